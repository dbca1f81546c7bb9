/**
 * `spike agent` as a user runs it: a real `spike agent` process with its
 * own SVID files, against a real Nexus over mTLS.
 *
 * - `--once` renders every format (env sourced back by bash, json, yaml,
 *   raw, inline and file templates, a pinned version) with the right modes,
 *   exits 0; a missing and a denied path make it exit 1 with clear errors.
 * - Running: a changed secret replaces its file atomically (a reader looping
 *   on the file in this test never sees a partial one), mode 0600, SIGHUP
 *   delivered to a pid-file process, a hung on_change command stopped at its
 *   timeout; metadata is polled, values read only per new version (counted in
 *   Nexus's audit trail); a deleted secret keeps or removes its file as told.
 * - The SVID files are replaced under the running agent (with an SVID for a
 *   second SPIFFE ID, so the audit trail shows which one each call used): its
 *   next calls carry the new identity, without a restart.
 * - Nexus killed: files untouched while it is gone and while it answers 503
 *   after its restart; the agent logs it and renders again once Nexus is back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { eventually, runSpike, SpikeProcess } from "./support/process.ts";
import { exits, type RestoredNexus, startRestoredNexus } from "./support/restored_nexus.ts";

const TD = "spiffe://spike.ist";
const AGENT_ID = `${TD}/workload/agent`;
const ROTATED_ID = `${TD}/workload/agent-rotated`;
const DB = { user: "admin-4be1", pass: 'pa\'ss "$HOME" `id` \\n\nline two ✓' };
const DB_V1 = { user: "first-user-77aa", pass: "first-pass-2b9c" };
const TLS_KEY = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkq-not-a-real-key\n-----END PRIVATE KEY-----\n";
/** Big values, so that a write that is not atomic would be caught half-done by the reader. */
const big = (i: number) => `version-${i}:` + `${i}`.repeat(150_000);

interface AuditLine {
  type: string;
  spiffeId: string | null;
  route: string;
  action: string;
  resource: string | null;
  outcome: string;
}

function auditOf(nexus: RestoredNexus): AuditLine[] {
  return nexus.process.output.split("\n").filter((l) => l.includes('"type":"audit"')).map((l) => JSON.parse(l));
}

/** Reads `path` as bash would after `set -a; . path`: the named variables' values. */
async function sourceEnvFile(path: string, names: string[]): Promise<Record<string, string>> {
  const script = 'set -a; . "$1"; set +a; shift; for n in "$@"; do printf "%s\\0" "${!n}"; done';
  const out = await new Deno.Command("bash", { args: ["-c", script, "bash", path, ...names], stdout: "piped" })
    .output();
  const parts = new TextDecoder().decode(out.stdout).split("\0");
  return Object.fromEntries(names.map((n, i) => [n, parts[i]!]));
}

Deno.test("spike agent against a real Nexus: formats, --once, changes, signals, rotation, outage", async (t) => {
  let nexus: RestoredNexus | undefined;
  const running: Array<{ stop(signal?: Deno.Signal): Promise<unknown> }> = [];
  try {
    nexus = await startRestoredNexus("spike_agent_");
    const n = nexus;
    const agentSvid = await n.mint("workload/agent");
    const dir = join(n.dir, "out");
    await Deno.mkdir(dir);
    const file = (name: string) => join(dir, name);
    const writeConfig = async (name: string, yaml: string) => {
      await Deno.writeTextFile(join(n.dir, name), yaml);
      return join(n.dir, name);
    };
    const put = (path: string, pairs: string[], stdin?: [string, string]) =>
      n.admin(["secret", "put", path, ...pairs, ...(stdin ? ["--from-stdin", stdin[0]] : [])], stdin?.[1]);

    await t.step("setup: secrets (app/db twice) and a policy for the agent's IDs", async () => {
      exits(await put("app/db", [`user=${DB_V1.user}`, `pass=${DB_V1.pass}`]), 0, "put db v1");
      const results = await Promise.all([
        put("app/db", [`user=${DB.user}`], ["pass", DB.pass + "\n"]),
        put("app/tls", [], ["key", TLS_KEY + "\n"]),
        put("app/big", [], ["value", big(0)]),
        put("app/temp", ["token=temp-token-5d21"]),
        put("other/secret", ["k=v"]),
        n.admin([
          "policy",
          "create",
          "--name",
          "agent-read",
          "--spiffeid-pattern",
          "^spiffe://spike\\.ist/workload/agent(-rotated)?$",
          "--path-pattern",
          "^app/",
          "--permissions",
          "read",
        ]),
      ]);
      results.forEach((r, i) => exits(r, 0, `setup ${i}`));
    });

    await t.step("--once renders every format with its mode and exits 0", async () => {
      await Deno.writeTextFile(join(n.dir, "db.tmpl"), 'user {{ index . "user" }}\n{{- /* trimmed */ }}\n');
      const config = await writeConfig(
        "once.yaml",
        `secrets:
  - { path: app/db, destination: ${file("db.env")}, format: env }
  - { path: app/db, destination: ${file("db.json")}, format: json, mode: "0640" }
  - { path: app/db, destination: ${file("db.yaml")}, format: yaml }
  - { path: app/tls, destination: ${file("tls.key")}, format: raw, key: key, mode: "0400" }
  - path: app/db
    destination: ${file("db.url")}
    format: template
    template: "postgres://{{ .user }}:{{ .pass }}@db/app"
  - { path: app/db, destination: ${file("db.conf")}, format: template, template_file: db.tmpl }
  - { path: app/db, version: 1, destination: ${file("db.v1.json")}, format: json }
`,
      );
      const result = exits(
        await runSpike(["agent", "--config", config, "--once"], { env: n.env(agentSvid) }),
        0,
        "once",
      );
      assert.equal(result.stdout, "");
      for (const value of [DB.pass, DB.user, TLS_KEY, DB_V1.pass]) {
        assert.ok(!result.stderr.includes(value), "no value logged");
      }
      assert.deepEqual(await sourceEnvFile(file("db.env"), ["user", "pass"]), DB);
      assert.deepEqual(JSON.parse(await Deno.readTextFile(file("db.json"))), DB);
      assert.deepEqual(parseYaml(await Deno.readTextFile(file("db.yaml"))), DB);
      assert.equal(await Deno.readTextFile(file("tls.key")), TLS_KEY);
      assert.equal(await Deno.readTextFile(file("db.url")), `postgres://${DB.user}:${DB.pass}@db/app`);
      assert.equal(await Deno.readTextFile(file("db.conf")), `user ${DB.user}\n`);
      assert.deepEqual(JSON.parse(await Deno.readTextFile(file("db.v1.json"))), DB_V1);
      const modes: Record<string, number> = { "db.json": 0o640, "tls.key": 0o400 };
      for (const name of ["db.env", "db.json", "db.yaml", "tls.key", "db.url", "db.conf", "db.v1.json"]) {
        assert.equal((await Deno.stat(file(name))).mode! & 0o777, modes[name] ?? 0o600, name);
      }
    });

    await t.step(
      "--once exits 1 for a missing or denied path (the rest still rendered) and for a bad config",
      async () => {
        const config = await writeConfig(
          "bad_paths.yaml",
          `secrets:
  - { path: app/tls, destination: ${file("tls2.key")}, format: raw, key: key }
  - { path: app/missing, destination: ${file("missing.json")}, format: json }
  - { path: other/secret, destination: ${file("denied.json")}, format: json }
`,
        );
        const badConfig = await writeConfig(
          "bad_field.yaml",
          `secrets:\n  - { path: app/db, destination: ${file("x")}, format: xml }\n`,
        );
        const [paths, field, noConfig] = await Promise.all([
          runSpike(["agent", "--config", config, "--once"], { env: n.env(agentSvid) }),
          runSpike(["agent", "--config", badConfig, "--once"], { env: n.env(agentSvid) }),
          runSpike(["agent", "--once"], { env: n.env(agentSvid) }),
        ]);
        exits(paths, 1, "missing and denied");
        assert.match(paths.stderr, /"path":"app\/missing".*"error":"secret not found"/);
        assert.match(paths.stderr, /"path":"other\/secret".*"error":"not authorized: .*\(read on other\/secret\)"/);
        assert.match(paths.stderr, /spike agent: not every secret was rendered/);
        assert.equal(await Deno.readTextFile(file("tls2.key")), TLS_KEY);
        await assert.rejects(Deno.stat(file("missing.json")), Deno.errors.NotFound);
        await assert.rejects(Deno.stat(file("denied.json")), Deno.errors.NotFound);
        assert.match(exits(field, 1, "bad field").stderr, /bad_field\.yaml: secrets\[0\]\.format: 'xml' is not one of/);
        assert.match(exits(noConfig, 2, "no --config").stderr, /--config is required/);
      },
    );

    // The long-running agent, shared by the steps below.
    const pidFile = file("app.pid");
    const hupLog = file("hup.log");
    const ranLog = file("ran.log");
    const app = new Deno.Command("bash", {
      args: [
        "-c",
        `trap 'echo HUP >> "$1"' HUP; echo $$ > "$2"; while true; do sleep 0.05; done`,
        "bash",
        hupLog,
        pidFile,
      ],
    }).spawn();
    running.push({ stop: async () => (app.kill("SIGKILL"), await app.status) });
    const hups = async () => (await Deno.readTextFile(hupLog).catch(() => "")).split("\n").filter((l) => l).length;
    const config = await writeConfig(
      "agent.yaml",
      `interval: 200ms
max_backoff: 1s
secrets:
  - path: app/big
    destination: ${file("big.json")}
    format: json
    on_change: { signal: HUP, pid_file: ${pidFile} }
  - { path: app/temp, destination: ${file("temp_keep.env")}, format: env }
  - { path: app/temp, destination: ${file("temp_remove.env")}, format: env, on_delete: remove }
  - path: app/db
    destination: ${file("user.txt")}
    format: raw
    key: user
    on_change: { command: [sh, -c, 'echo "$SPIKE_AGENT_SECRET_VERSION" >> ${ranLog}; exec sleep 30'], timeout: 300ms }
`,
    );
    await eventually(() => Deno.stat(pidFile).then((s) => s.size > 0), "the pid-file process is up");
    const agent = new SpikeProcess(["agent", "--config", config], { env: n.env(agentSvid) });
    running.push(agent);
    const bigValue = async () => JSON.parse(await Deno.readTextFile(file("big.json"))).value as string;

    await t.step(
      "running: renders, then a changed secret replaces the file atomically and signals the app",
      async () => {
        await agent.waitFor(/"message":"agent started"/);
        await eventually(async () => (await bigValue()) === big(0), "big.json rendered");
        await eventually(async () => (await hups()) === 1, "HUP after the first render");
        const allowed = new Set([0, 1, 2, 3, 4].map(big));
        let reads = 0;
        const bad: string[] = [];
        let reading = true;
        const reader = (async () => {
          while (reading) {
            try {
              const value = JSON.parse(await Deno.readTextFile(file("big.json"))).value;
              if (!allowed.has(value)) bad.push(`unexpected value of ${String(value).length} chars`);
            } catch (error) {
              bad.push((error as Error).message);
            }
            reads++;
          }
        })();
        try {
          for (const i of [1, 2, 3, 4]) {
            exits(await put("app/big", [], ["value", big(i)]), 0, `put big ${i}`);
            await eventually(async () => (await bigValue()) === big(i), `big.json holds version ${i + 1}`);
          }
        } finally {
          reading = false;
          await reader;
        }
        assert.deepEqual(bad, [], "the reader only ever saw a whole file");
        assert.ok(reads > 0);
        assert.equal((await Deno.stat(file("big.json"))).mode! & 0o777, 0o600);
        await eventually(async () => (await hups()) === 5, "one HUP per new version");
        const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp"));
        assert.deepEqual(leftovers, [], "no temporary files left");
      },
    );

    await t.step("running: metadata is polled, values are read once per version", async () => {
      const count = () => {
        const mine = auditOf(n).filter((r) => r.spiffeId === AGENT_ID && r.resource === "app/big");
        return {
          reads: mine.filter((r) => r.route === "/v1/store/secrets" && r.action === "get").length,
          polls: mine.filter((r) => r.route === "/v1/store/secrets/metadata").length,
        };
      };
      const before = count();
      assert.equal(before.reads, 5, "one read for each of the 5 versions");
      await eventually(() => Promise.resolve(count().polls >= before.polls + 3), "three more polls");
      assert.equal(count().reads, 5, "no read while nothing changed");
    });

    await t.step("running: a hung on_change command is stopped at its timeout and the agent goes on", async () => {
      await agent.waitFor(/"message":"on_change failed".*"path":"app\/db".*did not finish within 300 ms/);
      exits(await put("app/db", ["user=third-user-0c4f", "pass=p3"]), 0, "put db v3");
      await eventually(async () => (await Deno.readTextFile(file("user.txt"))) === "third-user-0c4f", "user.txt v3");
      await eventually(async () => (await Deno.readTextFile(ranLog)) === "2\n3\n", "the command ran per version");
    });

    await t.step("running: a deleted secret keeps its file, or removes it with on_delete: remove", async () => {
      const kept = await Deno.readTextFile(file("temp_keep.env"));
      exits(await n.admin(["secret", "delete", "app/temp", "-v", "1"]), 0, "delete app/temp");
      await agent.waitFor(/"message":"secret deleted; file removed \(on_delete: remove\)"/);
      await agent.waitFor(/"message":"secret deleted; keeping the last rendered file".*temp_keep\.env/);
      assert.equal(await Deno.readTextFile(file("temp_keep.env")), kept);
      await assert.rejects(Deno.stat(file("temp_remove.env")), Deno.errors.NotFound);
    });

    await t.step("running: SVID files replaced under the agent are used without a restart", async () => {
      const fresh = await n.mint("workload/agent-rotated");
      for (const name of ["svid_bundle.pem", "svid_key.pem", "svid.pem"]) {
        await Deno.rename(join(fresh, name), join(agentSvid, name));
      }
      await agent.waitFor(/"message":"SVID rotated".*agent-rotated/);
      exits(await put("app/big", [], ["value", big(5)]), 0, "put big after rotation");
      await eventually(async () => (await bigValue()) === big(5), "big.json after rotation");
      await eventually(async () => (await hups()) === 6, "HUP after rotation");
      assert.ok(
        auditOf(n).some((r) =>
          r.spiffeId === ROTATED_ID && r.route === "/v1/store/secrets" && r.action === "get" && r.resource === "app/big"
        ),
        "the new version was read with the new SVID",
      );
    });

    await t.step("Nexus killed: files kept, logged, retried; rendered again once Nexus is back", async () => {
      const names = ["big.json", "user.txt", "temp_keep.env"];
      const snapshot = async () =>
        await Promise.all(names.map(async (name) => {
          const [text, info] = await Promise.all([Deno.readTextFile(file(name)), Deno.stat(file(name))]);
          return `${name}:${info.ino}:${text.length}:${text.slice(0, 40)}`;
        }));
      const before = await snapshot();
      const warningsSoFar = () => agent.output.split("\n").filter((l) => l.includes("Nexus unavailable")).length;
      const warned = warningsSoFar();
      await n.kill();
      await eventually(() => Promise.resolve(warningsSoFar() > warned), "the agent logs that Nexus is unreachable");
      assert.match(
        agent.output,
        /"level":"warn".*"message":"Nexus unavailable; keeping the last rendered file and retrying".*"error":"Nexus unreachable/,
      );
      await new Promise((r) => setTimeout(r, 1500)); // a few retries (backoff up to 1 s)
      assert.deepEqual(await snapshot(), before, "files untouched while Nexus is down");

      await n.restart();
      // Up but without its key: 503 until restored.
      await eventually(
        () => Promise.resolve(/"error":"Nexus is not ready/.test(agent.output)),
        "the agent sees 503",
        20_000,
      );
      assert.deepEqual(await snapshot(), before, "files untouched while Nexus answers 503");
      await n.restore();
      exits(await put("app/big", [], ["value", big(6)]), 0, "put big after the outage");
      await eventually(async () => (await bigValue()) === big(6), "big.json after the outage", 20_000);
      await agent.waitFor(/"message":"recovered"/);
      await eventually(async () => (await hups()) === 7, "HUP after the outage");
    });

    await t.step("SIGTERM stops the agent with exit 0; no value was ever logged", async () => {
      const status = await agent.stop("SIGTERM");
      assert.equal(status.code, 0, agent.output.slice(-2000));
      for (const value of [DB.pass, DB.user, TLS_KEY, big(0).slice(0, 200), "temp-token-5d21", "third-user-0c4f"]) {
        assert.ok(!agent.output.includes(value), "the agent's output holds no secret value");
      }
    });
  } finally {
    for (const child of running.reverse()) await child.stop("SIGKILL").catch(() => {});
    await nexus?.close();
  }
});
