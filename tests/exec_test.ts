/**
 * `spike exec` as a user runs it: a real `spike` process reading secrets
 * from a real Nexus over mTLS with a workload's own SVID, then running a
 * real command with them. Checked: the command's environment (values byte
 * for byte, names mapped, nothing else with --no-inherit), stdin and exit
 * code passed through, signals sent to spike reaching the command, every
 * failure before the command starts (not found 3, denied 1, bad name 1,
 * collision 1, usage 2, command missing 127), and that no value ever shows
 * on spike's own output.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runSpike, SpikeProcess } from "./support/process.ts";
import { exits, type RestoredNexus, startRestoredNexus } from "./support/restored_nexus.ts";

const DB = { user: "admin", pass: 'pa\'ss "$HOME" `id` \\n\nline two ✓' };
const CACHE = { user: "cacheuser-7f3a", url: "redis://cache:6379/0" };
const ODD = { "db-pass": "odd-value-9c1e", ok_key: "fine-value-22d0" };
const VALUES = [...Object.values(DB), ...Object.values(CACHE), ...Object.values(ODD)];

/** Spike's own output must never carry a value (the command's output is another matter). */
function noValues(text: string, what: string): void {
  for (const value of VALUES) assert.ok(!text.includes(value), `${what} leaked a secret value`);
}

/** Reads a NUL-separated `env -0` dump into name → value. */
async function readEnvDump(path: string): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(path);
  const out: Record<string, string> = {};
  for (const entry of text.split("\0").filter((e) => e !== "")) {
    const at = entry.indexOf("=");
    out[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return out;
}

async function waitForText(path: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!pattern.test(await Deno.readTextFile(path).catch(() => ""))) {
    if (Date.now() > deadline) throw new Error(`${path} never matched ${pattern}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("spike exec against a real Nexus: environment, exit codes, signals, failures before the command", async (t) => {
  let nexus: RestoredNexus | undefined;
  try {
    nexus = await startRestoredNexus("spike_exec_");
    const n = nexus;
    const app = await n.mint("workload/app");
    const out = (name: string) => join(n.dir, name);
    const exec = (args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) =>
      runSpike(["exec", ...args], { env: n.env(app, options.env), ...(options.stdin ? { stdin: options.stdin } : {}) });

    await t.step("setup: secrets and a policy letting the workload read app/*", async () => {
      const puts = await Promise.all([
        n.admin(["secret", "put", "app/db", `user=${DB.user}`, "--from-stdin", "pass"], DB.pass + "\n"),
        n.admin(["secret", "put", "app/cache", `user=${CACHE.user}`, `url=${CACHE.url}`]),
        n.admin(["secret", "put", "app/odd", `db-pass=${ODD["db-pass"]}`, `ok_key=${ODD.ok_key}`]),
        n.admin(["secret", "put", "other/secret", "k=v"]),
        n.admin([
          "policy",
          "create",
          "--name",
          "app-read",
          "--spiffeid-pattern",
          "^spiffe://spike\\.ist/workload/app$",
          "--path-pattern",
          "^app/",
          "--permissions",
          "read",
        ]),
      ]);
      puts.forEach((r, i) => exits(r, 0, `setup ${i}`));
    });

    await t.step(
      "the command gets each key as a variable, byte for byte, beside the inherited environment",
      async () => {
        const dump = out("env1");
        const result = exits(
          await exec(["--path", "app/db", "--uppercase", "--", "sh", "-c", 'env -0 > "$1"', "sh", dump], {
            env: { INHERITED_MARK: "yes", USER: "overridden" },
          }),
          0,
          "exec",
        );
        const env = await readEnvDump(dump);
        assert.equal(env.USER, DB.user, "a secret wins over an inherited variable");
        assert.equal(env.PASS, DB.pass);
        assert.equal(env.INHERITED_MARK, "yes");
        assert.equal(env.user, undefined);
        noValues(result.stdout + result.stderr, "exec");
      },
    );

    await t.step("several paths: a collision is refused; per-path prefixes and --map sort it out", async () => {
      const [clash, clashGlobal] = await Promise.all([
        exec(["--path", "app/db", "--path", "app/cache", "--", "touch", out("never1")]),
        exec(["--path", "app/db", "--path", "app/cache", "--prefix", "P_", "--", "touch", out("never1")]),
      ]);
      for (const result of [clash, clashGlobal]) {
        exits(result, 1, "collision");
        assert.match(result.stderr, /app\/db \(key 'user'\) and app\/cache \(key 'user'\) would both be the variable/);
        noValues(result.stdout + result.stderr, "collision");
      }
      await assert.rejects(Deno.stat(out("never1")), Deno.errors.NotFound, "the command never ran");

      const dump = out("env2");
      const ok = exits(
        await exec([
          "--path",
          "app/db=DB_",
          "--path",
          "app/cache=CACHE_",
          "--path",
          "app/odd",
          "--prefix",
          "ODD_",
          "--uppercase",
          "--map",
          "app/odd:db-pass=ODD_DB_PASSWORD",
          "--",
          "sh",
          "-c",
          'env -0 > "$1"',
          "sh",
          dump,
        ]),
        0,
        "exec with prefixes",
      );
      const env = await readEnvDump(dump);
      assert.deepEqual(
        [env.DB_USER, env.DB_PASS, env.CACHE_USER, env.CACHE_URL, env.ODD_DB_PASSWORD, env.ODD_OK_KEY],
        [DB.user, DB.pass, CACHE.user, CACHE.url, ODD["db-pass"], ODD.ok_key],
      );
      noValues(ok.stdout + ok.stderr, "exec with prefixes");
    });

    await t.step("--no-inherit: the command sees the secrets and nothing else", async () => {
      const result = exits(await exec(["--no-inherit", "--path", "app/cache", "--", "env", "-0"]), 0, "no-inherit");
      const entries = result.stdout.split("\0").filter((e) => e !== "").sort();
      assert.deepEqual(entries, [`url=${CACHE.url}`, `user=${CACHE.user}`]);
      assert.equal(result.stderr, "");
    });

    await t.step("stdin, stdout and the exit code are the command's", async () => {
      const result = await exec(["--path", "app/cache", "--", "sh", "-c", "cat; exit 7"], { stdin: "piped in\n" });
      exits(result, 7, "exit code");
      assert.equal(result.stdout, "piped in\n");
      // Words after -- are the command's, even --help.
      const help = exits(
        await exec(["--path", "app/cache", "--", "sh", "-c", 'echo "$1"', "sh", "--help"]),
        0,
        "--help",
      );
      assert.equal(help.stdout, "--help\n");
    });

    await t.step("failures before the command starts: exit codes and messages naming keys, never values", async () => {
      const marker = out("never2");
      const touch = ["--", "touch", marker];
      const [missing, denied, badName, usageNoPath, usagePrefix, usageMap, noCommand, notFound] = await Promise.all([
        exec(["--path", "app/missing", ...touch]),
        exec(["--path", "other/secret", ...touch]),
        exec(["--path", "app/odd", ...touch]),
        exec(touch),
        exec(["--path", "app/db", "--prefix", "1X", ...touch]),
        exec(["--path", "app/db", "--map", "user=bad-name", ...touch]),
        exec(["--path", "app/db"]),
        exec(["--path", "app/db", "--", "spike-no-such-command"]),
      ]);
      assert.match(exits(missing, 3, "not found").stderr, /secret app\/missing: not found/);
      assert.match(exits(denied, 1, "denied").stderr, /secret other\/secret: not authorized/);
      assert.match(
        exits(badName, 1, "bad name").stderr,
        /app\/odd \(key 'db-pass'\) would be the variable 'db-pass', which is not a valid environment variable name; name it with --map app\/odd:db-pass=NAME/,
      );
      assert.match(exits(usageNoPath, 2, "no --path").stderr, /give at least one --path/);
      assert.match(exits(usagePrefix, 2, "bad prefix").stderr, /--prefix: '1X' cannot start/);
      assert.match(exits(usageMap, 2, "bad map").stderr, /'bad-name' is not a valid environment variable name/);
      assert.match(exits(noCommand, 2, "no command").stderr, /missing argument/);
      assert.match(exits(notFound, 127, "command not found").stderr, /command not found: spike-no-such-command/);
      for (const r of [missing, denied, badName, usageNoPath, usagePrefix, usageMap, noCommand, notFound]) {
        noValues(r.stdout + r.stderr, "a failure");
      }
      await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the command never ran");
    });

    await t.step("signals sent to spike exec reach the command; spike exits with its code", async () => {
      const log = out("signals.log");
      const script = `trap 'echo HUP >> "$1"' HUP; trap 'echo INT >> "$1"' INT; ` +
        `trap 'echo "TERM $user" >> "$1"; exit 42' TERM; echo ready >> "$1"; while true; do sleep 0.05; done`;
      const spike = new SpikeProcess(["exec", "--path", "app/cache", "--", "bash", "-c", script, "bash", log], {
        env: n.env(app),
      });
      const plainLog = out("plain.log");
      let plain: SpikeProcess | undefined;
      try {
        await waitForText(log, /ready/);
        // Signals that must not end spike go by pid; stop() sends one and waits for the exit.
        Deno.kill(spike.pid, "SIGHUP");
        await waitForText(log, /HUP/);
        Deno.kill(spike.pid, "SIGINT");
        await waitForText(log, /INT/);
        const status = await spike.stop("SIGTERM");
        assert.equal(status.code, 42, "the command's own exit code after it handled SIGTERM");
        assert.equal(await Deno.readTextFile(log), `ready\nHUP\nINT\nTERM ${CACHE.user}\n`);
        noValues(spike.output, "exec under signals");

        // A command that does not handle SIGTERM dies of it: 128 + 15, as a shell reports it.
        plain = new SpikeProcess(
          ["exec", "--path", "app/cache", "--", "sh", "-c", 'echo ready > "$1"; exec sleep 60', "sh", plainLog],
          { env: n.env(app) },
        );
        await waitForText(plainLog, /ready/);
        await new Promise((r) => setTimeout(r, 200)); // let sh exec into sleep
        assert.equal((await plain.stop("SIGTERM")).code, 143);
      } finally {
        await spike.stop("SIGKILL");
        await plain?.stop("SIGKILL");
      }
    });
  } finally {
    await nexus?.close();
  }
});
