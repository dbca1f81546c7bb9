import assert from "node:assert/strict";
import { join } from "node:path";
import { NotifyListener } from "../../tests/support/notify_listener.ts";
import { encodeNotifyMessage } from "./notify.ts";
import { NOTIFY_BIND_NAME, notifyBindPath, openNotifySocket } from "./notify_socket.ts";

Deno.test("the sending end binds in RUNTIME_DIRECTORY (its first entry)", () => {
  assert.equal(notifyBindPath({ RUNTIME_DIRECTORY: "/run/spike-nexus" }), "/run/spike-nexus/notify.sock");
  assert.equal(notifyBindPath({ RUNTIME_DIRECTORY: "/run/a:/run/b" }), "/run/a/notify.sock");
  assert.equal(notifyBindPath({}), undefined);
});

Deno.test("datagrams reach a real Unix datagram socket, from the bound path; stale files are replaced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_notify_socket_" });
  const listener = new NotifyListener(join(dir, "notify"));
  const bindPath = join(dir, "run", NOTIFY_BIND_NAME);
  await Deno.mkdir(join(dir, "run"));
  await Deno.writeTextFile(bindPath, "left by a killed run");
  try {
    const socket = await openNotifySocket(listener.path, bindPath);
    await socket.send(encodeNotifyMessage({ ready: true, status: "serving" }));
    const got = await listener.waitFor((f) => f.READY === "1");
    assert.deepEqual(got.fields, { READY: "1", STATUS: "serving" });
    assert.equal(got.from, bindPath);
    await socket.close();
    await assert.rejects(Deno.stat(bindPath), Deno.errors.NotFound);

    // Sends at the same moment (a status change and a ping) all arrive.
    const again = await openNotifySocket(listener.path, bindPath);
    await Promise.all([1, 2, 3].map((i) => again.send(encodeNotifyMessage({ status: `burst ${i}` }))));
    for (const i of [1, 2, 3]) await listener.waitFor((f) => f.STATUS === `burst ${i}`);
    await again.close();

    // Without a runtime directory: a private temporary one, removed at close.
    const temp = await openNotifySocket(listener.path);
    await temp.send(encodeNotifyMessage({ watchdog: true }));
    const ping = await listener.waitFor((f) => f.WATCHDOG === "1");
    assert.match(ping.from, /spike-notify-.*\/notify\.sock$/);
    await temp.close();
    await assert.rejects(Deno.stat(ping.from), Deno.errors.NotFound);

    // Nobody listening: send fails (the notifier logs it and carries on).
    const orphan = await openNotifySocket(join(dir, "nobody"), join(dir, "run", "x.sock"));
    await assert.rejects(orphan.send(encodeNotifyMessage({ watchdog: true })));
    await orphan.close();
  } finally {
    await listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
