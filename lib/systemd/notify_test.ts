import assert from "node:assert/strict";
import { encodeNotifyMessage, NotifyConfigError, notifySettingsFromEnv } from "./notify.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("messages are KEY=VALUE lines; a status stays on one line", () => {
  assert.equal(text(encodeNotifyMessage({ ready: true, status: "serving" })), "READY=1\nSTATUS=serving\n");
  assert.equal(text(encodeNotifyMessage({ watchdog: true })), "WATCHDOG=1\n");
  assert.equal(text(encodeNotifyMessage({ stopping: true, status: "stopping" })), "STOPPING=1\nSTATUS=stopping\n");
  // A newline would smuggle in an assignment of its own.
  assert.equal(text(encodeNotifyMessage({ status: "a\nREADY=1\r\nb" })), "STATUS=a READY=1 b\n");
  assert.equal(text(encodeNotifyMessage({ status: "x".repeat(500) })).length, "STATUS=".length + 200 + 1);
  assert.throws(() => encodeNotifyMessage({}), RangeError);
});

Deno.test("no NOTIFY_SOCKET: not under a service manager", () => {
  assert.equal(notifySettingsFromEnv({}, 42), undefined);
  assert.equal(notifySettingsFromEnv({ NOTIFY_SOCKET: " ", WATCHDOG_USEC: "1000000" }, 42), undefined);
});

Deno.test("the watchdog is pinged at half its period, only when armed for this process", () => {
  const env = { NOTIFY_SOCKET: "/run/systemd/notify", WATCHDOG_USEC: "30000000" };
  assert.deepEqual(notifySettingsFromEnv(env, 42), { socketPath: "/run/systemd/notify", watchdogIntervalMs: 15_000 });
  assert.deepEqual(notifySettingsFromEnv({ ...env, WATCHDOG_PID: "42" }, 42)?.watchdogIntervalMs, 15_000);
  assert.deepEqual(notifySettingsFromEnv({ ...env, WATCHDOG_PID: "7" }, 42), { socketPath: "/run/systemd/notify" });
  assert.deepEqual(notifySettingsFromEnv({ ...env, WATCHDOG_USEC: "0" }, 42), { socketPath: "/run/systemd/notify" });
  assert.deepEqual(notifySettingsFromEnv({ NOTIFY_SOCKET: "/n" }, 42), { socketPath: "/n" });
  assert.equal(notifySettingsFromEnv({ ...env, WATCHDOG_USEC: "1" }, 42)?.watchdogIntervalMs, 1);
});

Deno.test("values that cannot be honoured fail clearly, naming the variable", () => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ NOTIFY_SOCKET: "@/org/freedesktop/systemd1/notify" }, /^NOTIFY_SOCKET: abstract socket/],
    [{ NOTIFY_SOCKET: "run/notify" }, /^NOTIFY_SOCKET: 'run\/notify' is not an absolute path/],
    [{ NOTIFY_SOCKET: "/n", WATCHDOG_USEC: "30s" }, /^WATCHDOG_USEC: '30s'/],
    [{ NOTIFY_SOCKET: "/n", WATCHDOG_USEC: "-5" }, /^WATCHDOG_USEC: '-5'/],
    [{ NOTIFY_SOCKET: "/n", WATCHDOG_USEC: "100", WATCHDOG_PID: "me" }, /^WATCHDOG_PID: 'me'/],
  ];
  for (const [env, message] of bad) {
    assert.throws(
      () => notifySettingsFromEnv(env, 42),
      (e) => e instanceof NotifyConfigError && message.test(e.message),
    );
  }
});
