import assert from "node:assert/strict";
import { join } from "node:path";
import { ChangeActionError, runChangeAction } from "./change_action.ts";

const facts = { path: "app/db", destination: "/run/db.env", version: 4 };

async function waitForText(path: string, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} never matched ${pattern}`);
}

Deno.test("on_change signal: the process in the pid file gets it", async () => {
  const dir = await Deno.makeTempDir();
  const log = join(dir, "log");
  const pidFile = join(dir, "app.pid");
  const child = new Deno.Command("bash", {
    args: ["-c", `trap 'echo HUP >> ${log}' HUP; echo $$ > ${pidFile}; while true; do sleep 0.05; done`],
  }).spawn();
  try {
    await waitForText(pidFile, /^\d+\n$/);
    await runChangeAction({ kind: "signal", signal: "SIGHUP", pidFile }, facts);
    await waitForText(log, /HUP/);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("on_change signal: a missing, garbled or stale pid file is a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pidFile = join(dir, "app.pid");
    const signal = { kind: "signal", signal: "SIGHUP", pidFile } as const;
    await assert.rejects(runChangeAction(signal, facts), /cannot read pid file/);
    for (const text of ["abc", "-1", "0", "1", ""]) {
      await Deno.writeTextFile(pidFile, text);
      await assert.rejects(runChangeAction(signal, facts), /does not hold a process id/, text);
    }
    // A process that has exited (its pid is not reused this fast).
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    await Deno.writeTextFile(pidFile, `${gone.pid}\n`);
    await assert.rejects(runChangeAction(signal, facts), (e: unknown) => e instanceof ChangeActionError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("on_change command: runs without a shell, learns the facts, fails on a non-zero exit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "out");
    const script = `echo "$SPIKE_AGENT_SECRET_PATH $SPIKE_AGENT_DESTINATION $SPIKE_AGENT_SECRET_VERSION" > ${out}`;
    await runChangeAction({ kind: "command", command: ["sh", "-c", script], timeoutMs: 10_000 }, facts);
    assert.equal(await Deno.readTextFile(out), "app/db /run/db.env 4\n");
    await assert.rejects(
      runChangeAction({ kind: "command", command: ["sh", "-c", "exit 3"], timeoutMs: 10_000 }, facts),
      /sh exited with code 3/,
    );
    await assert.rejects(
      runChangeAction({ kind: "command", command: ["spike-no-such-reload"], timeoutMs: 10_000 }, facts),
      /cannot start spike-no-such-reload/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("on_change command: stopped at its timeout", async () => {
  await assert.rejects(
    runChangeAction({ kind: "command", command: ["sleep", "30"], timeoutMs: 200 }, facts),
    /sleep did not finish within 200 ms and was stopped/,
  );
  // One that ignores SIGTERM is killed after the grace period.
  await assert.rejects(
    runChangeAction({
      kind: "command",
      command: ["bash", "-c", "trap '' TERM; while true; do sleep 0.05; done"],
      timeoutMs: 100,
    }, facts),
    /did not finish within 100 ms/,
  );
});
