import assert from "node:assert/strict";
import { join } from "node:path";
import { ChildStartError, FORWARDED_SIGNALS, runChild, type SignalHub } from "./child_runner.ts";

/** A signal hub the test fires by hand, so no signal reaches the test process. */
function manualSignals(): SignalHub & { fire(signal: Deno.Signal): void; count(): number } {
  const handlers = new Map<Deno.Signal, Set<() => void>>();
  return {
    add: (s, h) => void (handlers.get(s) ?? handlers.set(s, new Set()).get(s)!).add(h),
    remove: (s, h) => void handlers.get(s)?.delete(h),
    fire: (s) => handlers.get(s)?.forEach((h) => h()),
    count: () => [...handlers.values()].reduce((n, set) => n + set.size, 0),
  };
}

async function waitForFile(path: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (pattern.test(text)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} never matched ${pattern}`);
}

Deno.test("runChild: exit code and environment (added, or alone with clearEnv)", async () => {
  const signals = manualSignals();
  assert.equal(await runChild({ command: "sh", args: ["-c", "exit 7"], env: {}, clearEnv: false }, signals), 7);
  assert.equal(
    await runChild({
      command: "sh",
      args: ["-c", 'test "$A" = 1 && test -n "$PATH"'],
      env: { A: "1" },
      clearEnv: false,
    }, signals),
    0,
  );
  // With clearEnv the child has only what it was given (env prints it), and
  // the command is still found on spike's PATH.
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "env.txt");
    const code = await runChild(
      { command: "sh", args: ["-c", `env > ${out}`], env: { ONLY: "this" }, clearEnv: true },
      signals,
    );
    assert.equal(code, 0);
    const names = (await Deno.readTextFile(out)).trim().split("\n").map((l) => l.split("=")[0]);
    // sh itself may define PWD/SHLVL/_; nothing of the parent's comes through.
    assert.ok(names.includes("ONLY"));
    assert.ok(!names.includes("HOME") && !names.includes("PATH"), names.join(","));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(signals.count(), 0, "listeners are removed once the child ends");
});

Deno.test("runChild: forwarded signals reach the child; death by signal is 128+n", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = join(dir, "log");
    const signals = manualSignals();
    const script = `trap 'echo HUP >> ${log}' HUP; trap 'echo TERM >> ${log}; exit 42' TERM; ` +
      `echo ready >> ${log}; while true; do sleep 0.05; done`;
    const running = runChild({ command: "bash", args: ["-c", script], env: {}, clearEnv: false }, signals);
    await waitForFile(log, /ready/);
    signals.fire("SIGHUP");
    await waitForFile(log, /HUP/);
    signals.fire("SIGTERM");
    assert.equal(await running, 42, "the child's own exit code after it handled SIGTERM");
    assert.equal(await Deno.readTextFile(log), "ready\nHUP\nTERM\n");

    const plain = runChild({ command: "sleep", args: ["30"], env: {}, clearEnv: false }, signals);
    await new Promise((r) => setTimeout(r, 100));
    signals.fire("SIGINT");
    assert.equal(await plain, 130, "killed by SIGINT: 128 + 2");
    assert.ok(FORWARDED_SIGNALS.includes("SIGUSR1"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runChild: a command that cannot start is 127 (not found) or 126 (not executable)", async () => {
  await assert.rejects(
    runChild({ command: "spike-no-such-command", args: [], env: {}, clearEnv: false }),
    (e: unknown) => e instanceof ChildStartError && e.exitCode === 127 && /command not found/.test(e.message),
  );
  const dir = await Deno.makeTempDir();
  try {
    const script = join(dir, "script.sh");
    await Deno.writeTextFile(script, "echo hi\n", { mode: 0o644 });
    await assert.rejects(
      runChild({ command: script, args: [], env: {}, clearEnv: false }),
      (e: unknown) => e instanceof ChildStartError && e.exitCode === 126,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
