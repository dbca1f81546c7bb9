import assert from "node:assert/strict";
import { silentLogger } from "../log/logger.ts";
import type { NotifyMessage } from "./notify.ts";
import { type Readiness, startServiceNotifier } from "./service_notifier.ts";

/** Resolves once `check` holds, polling every 5 ms (bounded). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(check(), what);
}

Deno.test("READY=1 is sent once, when the role turns ready; status lines only when they change", async () => {
  const sent: NotifyMessage[] = [];
  let state: Readiness = { ready: false, status: "waiting for the root key" };
  const notifier = startServiceNotifier({
    send: (m) => (sent.push(m), Promise.resolve()),
    readiness: () => Promise.resolve(state),
    pollIntervalMs: 5,
    log: silentLogger,
  });
  try {
    await until(() => sent.length === 1, "the first status goes out at once");
    assert.deepEqual(sent[0], { status: "waiting for the root key" });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(sent.length, 1, "an unchanged status is not repeated");
    state = { ready: true, status: "serving" };
    await until(() => sent.length === 2, "readiness is reported");
    assert.deepEqual(sent[1], { ready: true, status: "serving" });
    state = { ready: false, status: "store down" };
    await until(() => sent.length === 3, "a later change of status is reported");
    assert.deepEqual(sent[2], { status: "store down" }, "never READY=0, never a second READY=1");
    state = { ready: true, status: "serving" };
    await until(() => sent.length === 4, "recovered");
    assert.deepEqual(sent[3], { status: "serving" });
  } finally {
    await notifier.stopping();
  }
  assert.deepEqual(sent.at(-1), { stopping: true, status: "stopping" });
  const count = sent.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(sent.length, count, "nothing is sent after stopping");
});

Deno.test("watchdog pings come from a timer; none without a watchdog", async () => {
  const sent: NotifyMessage[] = [];
  const ready = () => Promise.resolve({ ready: true, status: "ok" });
  const withWatchdog = startServiceNotifier({
    send: (m) => (sent.push(m), Promise.resolve()),
    readiness: ready,
    watchdogIntervalMs: 5,
    log: silentLogger,
  });
  await until(() => sent.filter((m) => m.watchdog).length >= 4, "several pings");
  await withWatchdog.stopping();

  const quiet: NotifyMessage[] = [];
  const without = startServiceNotifier({
    send: (m) => (quiet.push(m), Promise.resolve()),
    readiness: ready,
    pollIntervalMs: 5,
    log: silentLogger,
  });
  await new Promise((r) => setTimeout(r, 40));
  await without.stopping();
  assert.ok(!quiet.some((m) => m.watchdog));
});

Deno.test("a failing send or readiness check is logged once and does not stop the notifier", async () => {
  const warnings: string[] = [];
  const log = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
  let fail = true;
  let sentOk = 0;
  const notifier = startServiceNotifier({
    send: () => fail ? Promise.reject(new Error("ECONNREFUSED")) : (sentOk++, Promise.resolve()),
    readiness: () => Promise.resolve({ ready: true, status: "ok" }),
    watchdogIntervalMs: 5,
    log,
  });
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(warnings, ["cannot notify the service manager"]);
  fail = false;
  await until(() => sentOk > 0, "pings resume once the socket answers");
  await notifier.stopping();

  const broken = startServiceNotifier({
    send: () => Promise.resolve(),
    readiness: () => Promise.reject(new Error("boom")),
    pollIntervalMs: 5,
    log,
  });
  await until(() => warnings.includes("readiness check failed"), "a throwing check is logged");
  await broken.stopping();
});
