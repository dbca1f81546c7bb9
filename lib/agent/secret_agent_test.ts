/**
 * The poll loop's decisions with a scripted Nexus, a recording sleep and a
 * temporary directory. The same behaviour against a real Nexus over mTLS is
 * in tests/agent_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiCallError } from "../client/errors.ts";
import type { SecretMetadata } from "../client/nexus_client.ts";
import { createLogger } from "../log/logger.ts";
import type { ChangeFacts } from "./change_action.ts";
import { type AgentConfig, parseAgentConfig } from "./config.ts";
import { backoffDelay, createSecretAgent, ONCE_ATTEMPTS, type SecretReader } from "./secret_agent.ts";

/** An in-memory Nexus for one path at a time, with a queue of failures to answer first. */
class ScriptedNexus implements SecretReader {
  versions = new Map<number, { values: Record<string, string>; deleted: boolean }>();
  failures: unknown[] = [];
  metadataCalls = 0;
  readCalls = 0;

  put(values: Record<string, string>): void {
    this.versions.set(this.versions.size + 1, { values, deleted: false });
  }

  get current(): number {
    return Math.max(0, ...[...this.versions].filter(([, v]) => !v.deleted).map(([n]) => n));
  }

  getSecretMetadata(_path: string, version = 0): Promise<SecretMetadata> {
    this.metadataCalls++;
    if (this.failures.length > 0) return Promise.reject(this.failures.shift());
    const n = version || this.current;
    const v = this.versions.get(n);
    if (n === 0 || !v || v.deleted) return Promise.reject(new ApiCallError(404, "api_not_found"));
    const versions: Record<string, { createdTime: string; version: number; deletedTime: string | null }> = {};
    for (const [k, x] of this.versions) {
      versions[k] = { createdTime: "", version: k, deletedTime: x.deleted ? "t" : null };
    }
    return Promise.resolve({
      versions,
      metadata: { currentVersion: this.current, oldestVersion: 1, createdTime: "", updatedTime: "", maxVersions: 10 },
    });
  }

  getSecret(_path: string, version = 0): Promise<Record<string, string>> {
    this.readCalls++;
    const v = this.versions.get(version || this.current);
    if (!v || v.deleted) return Promise.reject(new ApiCallError(404, "api_not_found"));
    return Promise.resolve({ ...v.values });
  }
}

interface Harness {
  dir: string;
  file: string;
  nexus: ScriptedNexus;
  logs: Array<{ level: string; message: string; error?: string }>;
  actions: ChangeFacts[];
  delays: number[];
  config: AgentConfig;
}

async function harness(entryYaml = "", top = "interval: 1s\nmax_backoff: 8s\n"): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "secret_agent_" });
  const file = join(dir, "out.json");
  const config = parseAgentConfig(
    `${top}secrets:\n  - path: app/db\n    destination: ${file}\n    format: json\n${entryYaml}`,
    { source: "test.yaml", baseDir: dir, readTextFile: Deno.readTextFileSync },
  );
  return { dir, file, nexus: new ScriptedNexus(), logs: [], actions: [], delays: [], config };
}

/** Builds the agent; `onSleep(n)` runs at the n-th sleep (from 1) and returns true to stop. */
function agentOf(h: Harness, onSleep: (n: number) => boolean | void = () => {}) {
  const stop = new AbortController();
  const agent = createSecretAgent({
    config: h.config,
    reader: h.nexus,
    log: createLogger({
      component: "test",
      level: "debug",
      write: (line) => h.logs.push(JSON.parse(line)),
    }),
    runAction: (_action, facts) => {
      h.actions.push(facts);
      return Promise.resolve();
    },
    sleep: (ms) => {
      h.delays.push(ms);
      if (onSleep(h.delays.length)) stop.abort();
      return Promise.resolve();
    },
    random: () => 0.5, // no jitter: 0.9 + 0.2 * 0.5 = 1
  });
  return { agent, run: () => agent.run(stop.signal) };
}

const read = (h: Harness) => Deno.readTextFile(h.file).then(JSON.parse);
const cleanup = (h: Harness) => Deno.remove(h.dir, { recursive: true });

Deno.test("agent: renders, then reads values only when the version changes; on_change only after a write", async () => {
  const h = await harness("    on_change: { signal: HUP, pid_file: /nonexistent }\n");
  try {
    h.nexus.put({ user: "a" });
    const { run } = agentOf(h, (n) => {
      if (n === 3) h.nexus.put({ user: "b" });
      return n === 6;
    });
    await run();
    assert.deepEqual(await read(h), { user: "b" });
    assert.equal(h.nexus.metadataCalls, 6, "one metadata call per poll");
    assert.equal(h.nexus.readCalls, 2, "one full read per new version, none when nothing changed");
    assert.deepEqual(h.actions.map((a) => a.version), [1, 2]);
    assert.deepEqual(h.delays, [1000, 1000, 1000, 1000, 1000, 1000], "the poll interval");
    assert.equal((await Deno.stat(h.file)).mode! & 0o777, 0o600);
  } finally {
    await cleanup(h);
  }
});

Deno.test("agent: a file already holding the rendered bytes is not rewritten and triggers nothing", async () => {
  const h = await harness("    on_change: { signal: HUP, pid_file: /nonexistent }\n");
  try {
    h.nexus.put({ user: "a" });
    await Deno.writeTextFile(h.file, JSON.stringify({ user: "a" }, null, 2) + "\n", { mode: 0o600 });
    await Deno.chmod(h.file, 0o600);
    const inode = (await Deno.stat(h.file)).ino;
    assert.equal(await agentOf(h).agent.once(), true);
    assert.equal((await Deno.stat(h.file)).ino, inode);
    assert.deepEqual(h.actions, []);
  } finally {
    await cleanup(h);
  }
});

Deno.test("agent: Nexus unreachable or not ready keeps the file, backs off, logs once, recovers", async () => {
  const h = await harness();
  try {
    h.nexus.put({ user: "a" });
    const { run } = agentOf(h, (n) => {
      if (n === 1) {
        h.nexus.put({ user: "b" });
        h.nexus.failures.push(
          new ApiCallError(429, "api_rate_limited", 3),
          new Error("connect ECONNREFUSED"),
          new Error("connect ECONNREFUSED"),
          new ApiCallError(503, "state_not_ready"),
          new ApiCallError(503, "state_not_ready"),
          new ApiCallError(503, "state_not_ready"),
        );
      }
      if (n > 1 && n < 8) assert.deepEqual(JSON.parse(Deno.readTextFileSync(h.file)), { user: "a" }, "kept");
      return n === 9;
    });
    await run();
    assert.deepEqual(await read(h), { user: "b" });
    // The interval; a 429's Retry-After (3 s); backoff doubling from 1 s up to max_backoff (8 s); the interval again.
    assert.deepEqual(h.delays, [1000, 3000, 2000, 4000, 8000, 8000, 8000, 1000, 1000]);
    const warnings = h.logs.filter((l) => l.level === "warn");
    assert.deepEqual(
      warnings.map((l) => l.error),
      [
        new ApiCallError(429, "api_rate_limited").message,
        "Nexus unreachable: connect ECONNREFUSED",
        new ApiCallError(503, "state_not_ready").message,
      ],
      "each new problem logged once",
    );
    assert.ok(h.logs.some((l) => l.message === "recovered"));
  } finally {
    await cleanup(h);
  }
});

Deno.test("agent: a deleted secret keeps its file (or removes it with on_delete: remove) and comes back", async () => {
  for (const onDelete of ["keep", "remove"] as const) {
    const h = await harness(`    on_delete: ${onDelete}\n`);
    try {
      h.nexus.put({ user: "a" });
      const { run } = agentOf(h, (n) => {
        if (n === 1) h.nexus.versions.get(1)!.deleted = true;
        if (n === 3) h.nexus.put({ user: "c" });
        if (n === 2) {
          const exists = (() => {
            try {
              return Deno.statSync(h.file).isFile;
            } catch {
              return false;
            }
          })();
          assert.equal(exists, onDelete === "keep", `file after delete with on_delete ${onDelete}`);
        }
        return n === 4;
      });
      await run();
      assert.deepEqual(await read(h), { user: "c" });
      assert.ok(h.logs.some((l) => l.level === "warn" && l.message.startsWith("secret deleted")));
    } finally {
      await cleanup(h);
    }
  }
});

Deno.test("agent: denied or unrenderable is an error logged once, the file untouched, retried at the interval", async () => {
  const h = await harness("", "interval: 1s\n");
  try {
    h.nexus.put({ user: "a" });
    assert.equal(await agentOf(h).agent.once(), true);
    h.nexus.put({ user: "b" });
    h.nexus.failures.push(new ApiCallError(401, "access_unauthorized"), new ApiCallError(401, "access_unauthorized"));
    const { run } = agentOf(h, (n) => n === 3);
    await run();
    assert.deepEqual(h.delays, [1000, 1000, 1000]);
    const errors = h.logs.filter((l) => l.level === "error");
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.error!, /not authorized.*\(read on app\/db\)/);
    assert.deepEqual(await read(h), { user: "b" }, "rendered once the policy allowed it");
  } finally {
    await cleanup(h);
  }
});

Deno.test("agent --once: true when all rendered; false for not found, denied, or Nexus down after retries", async () => {
  const h = await harness();
  try {
    assert.equal(await agentOf(h).agent.once(), false, "not found");
    assert.match(h.logs.at(-1)!.error!, /secret not found/);
    h.nexus.put({ user: "a" });
    h.nexus.failures.push(new ApiCallError(401, "access_unauthorized"));
    assert.equal(await agentOf(h).agent.once(), false, "denied");
    h.delays.length = 0;
    for (let i = 0; i < ONCE_ATTEMPTS; i++) h.nexus.failures.push(new Error("connect ECONNREFUSED"));
    assert.equal(await agentOf(h).agent.once(), false, "unreachable");
    assert.deepEqual(h.delays, [1000, 2000, 4000, 8000], "backoff between the attempts");
    await assert.rejects(Deno.stat(h.file), Deno.errors.NotFound, "nothing written on failure");
    h.nexus.failures.push(new ApiCallError(503, "state_not_ready"));
    assert.equal(await agentOf(h).agent.once(), true, "ready on the second attempt");
    assert.deepEqual(await read(h), { user: "a" });
  } finally {
    await cleanup(h);
  }
});

Deno.test("backoffDelay: from min(interval, 1 s), doubling, capped, at least Retry-After", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 30_000, 10_000)), [
    1000,
    2000,
    4000,
    8000,
    10_000,
    10_000,
  ]);
  assert.deepEqual([1, 2, 3].map((n) => backoffDelay(n, 200, 60_000)), [200, 400, 800]);
  assert.equal(backoffDelay(1, 30_000, 60_000, 5000), 5000);
  assert.equal(backoffDelay(1000, 30_000, 60_000), 60_000);
});
