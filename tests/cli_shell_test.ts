/**
 * The CLI the way a shell user meets it, against a real `spike dev` stack
 * (real processes, real mTLS): a value redirected to a file keeps its exact
 * bytes; at a terminal it gets a newline; `-f env` output loads back into a
 * real bash; `--from-stdin` asks without echo at a terminal and reads until
 * Ctrl-D.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, runSpike, SPIKE_MAIN, SpikeProcess, TEST_DENO_FLAGS } from "./support/process.ts";
import { hasScript, runOnTerminal } from "./support/pty.ts";

/** Parses the `export NAME='value'` lines of pilot.env. */
async function readPilotEnv(file: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await Deno.readTextFile(file)).split("\n")) {
    const match = /^export ([A-Z_]+)='(.*)'$/.exec(line);
    if (match) env[match[1]!] = match[2]!.replaceAll(`'"'"'`, "'");
  }
  return env;
}

const terminal = await hasScript();
if (!terminal) console.warn("cli_shell_test: 'script' (util-linux) is missing; the terminal steps are skipped");

Deno.test("spike CLI in a shell: exact bytes to files, newline on a terminal, env lines, hidden stdin", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "spike-cli-shell-" });
  const ports = [freePort(), freePort(), freePort(), freePort()];
  const stack = new SpikeProcess([
    "dev",
    "--dir",
    join(dir, "dev"),
    "--nexus-port",
    String(ports[0]),
    "--keeper-ports",
    ports.slice(1).join(","),
  ]);
  try {
    await stack.waitFor(/spike dev: ready/, 120_000);
    const env = await readPilotEnv(join(dir, "dev", "pilot.env"));
    const spike = (args: string[], stdin?: string) =>
      runSpike(args, { env, ...(stdin === undefined ? {} : { stdin }) });
    // The terminal runs deno directly; it needs the same environment runSpike gives its children.
    const terminalEnv = {
      ...env,
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? dir,
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
      TERM: "dumb",
    };
    const spikeArgv = (args: string[]) => [Deno.execPath(), "run", ...TEST_DENO_FLAGS, SPIKE_MAIN, ...args];

    const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const tricky = `it's "quoted" $HOME \`id\` \\ back\nslash\n\ttab é 🔑 !`;
    await Deno.writeTextFile(join(dir, "cert.pem"), cert);
    await Deno.writeTextFile(join(dir, "tricky.txt"), tricky);
    const put = await spike([
      "secret",
      "put",
      "app/tls",
      "--from-file",
      `cert=${join(dir, "cert.pem")}`,
      "--from-file",
      `tricky=${join(dir, "tricky.txt")}`,
      "token=no-newline",
    ]);
    assert.equal(put.code, 0, put.stderr);

    await t.step("a value redirected to a file (or a pipe) is its exact bytes, nothing added", async () => {
      const script = `'${Deno.execPath()}' run ${
        TEST_DENO_FLAGS.join(" ")
      } '${SPIKE_MAIN}' secret get app/tls cert > out.pem`;
      const output = await new Deno.Command("bash", {
        args: ["-c", script],
        cwd: dir,
        env: { ...env, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.deepEqual(await Deno.readFile(join(dir, "out.pem")), new TextEncoder().encode(cert));
      const token = await spike(["secret", "get", "app/tls", "token"]);
      assert.deepEqual([token.code, token.stdout], [0, "no-newline"], token.stderr);
    });

    await t.step({
      name: "at a terminal, a value printed alone ends with a newline",
      ignore: !terminal,
      fn: async () => {
        const shown = await runOnTerminal(spikeArgv(["secret", "get", "app/tls", "token"]), terminalEnv);
        assert.equal(shown.code, 0, shown.screen);
        // The terminal turns "\n" into "\r\n".
        assert.equal(shown.screen, "no-newline\r\n");
      },
    });

    await t.step("-f env lines load back exactly in bash; a key that is no shell name is refused", async () => {
      const lines = await spike(["secret", "get", "app/tls", "-f", "env"]);
      assert.equal(lines.code, 0, lines.stderr);
      await Deno.writeTextFile(join(dir, "tls.env"), lines.stdout);
      const output = await new Deno.Command("bash", {
        args: ["--noprofile", "--norc", "-c", `set -a; . ./tls.env; set +a; printf '%s\\0' "$cert" "$tricky" "$token"`],
        cwd: dir,
        env: { LC_ALL: "C.UTF-8" },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.deepEqual(new TextDecoder().decode(output.stdout).split("\0").slice(0, 3), [cert, tricky, "no-newline"]);

      const one = await spike(["secret", "get", "app/tls", "token", "-f", "env"]);
      assert.deepEqual([one.code, one.stdout], [0, "token='no-newline'\n"], one.stderr);

      assert.equal((await spike(["secret", "put", "app/odd", "my-key=1", "ok=2"])).code, 0);
      const refused = await spike(["secret", "get", "app/odd", "-f", "env"]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, "");
      assert.match(refused.stderr, /key 'my-key' is not a shell variable name.*use -f json/);
    });

    await t.step({
      name: "--from-stdin at a terminal asks without echo and reads until Ctrl-D",
      ignore: !terminal,
      fn: async () => {
        const typed = await runOnTerminal(
          spikeArgv(["secret", "put", "app/typed", "--from-stdin", "pass"]),
          terminalEnv,
          // Backspace takes back the 'X'; Enter makes a line break; Ctrl-D ends the value.
          [{ when: "end with Ctrl-D", keys: "first lineX\x7f\rsecond line\r\x04" }],
        );
        assert.equal(typed.code, 0, typed.screen);
        assert.match(typed.screen, /Value of 'pass' \(input is hidden; end with Ctrl-D\): /);
        assert.ok(!typed.screen.includes("first line"), `the value was echoed:\n${typed.screen}`);
        assert.ok(!typed.screen.includes("second"), `the value was echoed:\n${typed.screen}`);
        const read = await spike(["secret", "get", "app/typed", "pass"]);
        // One trailing newline (the Enter before Ctrl-D) is dropped, as for piped input.
        assert.deepEqual([read.code, read.stdout], [0, "first line\nsecond line"], read.stderr);
      },
    });

    await t.step("--from-stdin from a pipe reads silently: no prompt", async () => {
      const piped = await spike(["secret", "put", "app/piped", "--from-stdin", "pass"], "from a pipe\n");
      assert.equal(piped.code, 0, piped.stderr);
      assert.doesNotMatch(piped.stderr, /Ctrl-D/);
      const read = await spike(["secret", "get", "app/piped", "pass"]);
      assert.equal(read.stdout, "from a pipe");
    });
  } finally {
    await stack.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});
