import assert from "node:assert/strict";
import { join } from "node:path";
import { createDevCa, writeSvidFiles } from "./dev_ca.ts";
import { IdentitySourceError } from "./identity_check.ts";
import { chooseIdentitySource, DEFAULT_ENDPOINT_SOCKET, selectIdentitySource } from "./source_select.ts";
import { startWorkloadApiServer } from "./workload_api_server.ts";

const TD = "spike.ist";

Deno.test("chooseIdentitySource: files win, then the endpoint, then the default socket", () => {
  assert.deepEqual(chooseIdentitySource({ svidDir: "/run/svid", endpointSocket: "unix:///a.sock" }), {
    kind: "files",
    svidDir: "/run/svid",
  });
  assert.deepEqual(chooseIdentitySource({ svidDir: "", endpointSocket: "unix:///a.sock" }), {
    kind: "workload_api",
    endpoint: "unix:///a.sock",
  });
  assert.deepEqual(chooseIdentitySource({}), { kind: "workload_api", endpoint: DEFAULT_ENDPOINT_SOCKET });
  assert.deepEqual(chooseIdentitySource({ endpointSocket: "" }), {
    kind: "workload_api",
    endpoint: "unix:///tmp/spire-agent/public/api.sock",
  });
});

Deno.test("selectIdentitySource starts a file source for svidDir", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const svid = await ca.issue(`spiffe://${TD}/files`);
  const dir = await Deno.makeTempDir({ prefix: "spike_select_" });
  await writeSvidFiles(dir, svid);
  // The endpoint is bogus on purpose: it must not even be parsed when files are configured.
  const source = selectIdentitySource({ svidDir: dir, endpointSocket: "http://ignored" });
  try {
    assert.equal((await source.ready()).spiffeId, svid.spiffeId);
  } finally {
    await source.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("selectIdentitySource without the directory watch (one-shot commands) still follows a rotation", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const first = await ca.issue(`spiffe://${TD}/files`);
  const second = await ca.issue(`spiffe://${TD}/files`);
  const dir = await Deno.makeTempDir({ prefix: "spike_select_" });
  await writeSvidFiles(dir, first);
  const source = selectIdentitySource({ svidDir: dir }, { watchFiles: false });
  try {
    assert.equal((await source.ready()).certChainPem, first.certChainPem);
    const rotated = new Promise<string>((resolve) => {
      const off = source.onChange((identity) => {
        off();
        resolve(identity.certChainPem);
      });
    });
    await writeSvidFiles(dir, second);
    // The stat poll (every second) notices it without a watcher.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const chain = await Promise.race([
      rotated,
      new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error("no rotation seen")), 5000)),
    ]).finally(() => clearTimeout(timer));
    assert.equal(chain, second.certChainPem);
    assert.notEqual(first.certChainPem, second.certChainPem);
  } finally {
    await source.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("selectIdentitySource starts a Workload API source otherwise", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const svid = await ca.issue(`spiffe://${TD}/api`);
  const dir = await Deno.makeTempDir({ prefix: "spike_select_" });
  const server = await startWorkloadApiServer({ socketPath: join(dir, "api.sock"), identity: svid });
  const source = selectIdentitySource({ endpointSocket: server.endpoint }, { readyTimeoutMs: 5000 });
  try {
    assert.equal((await source.ready()).spiffeId, svid.spiffeId);
  } finally {
    await source.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("selectIdentitySource rejects a malformed endpoint", () => {
  assert.throws(
    () => selectIdentitySource({ endpointSocket: "http://127.0.0.1:8081" }),
    (e) => e instanceof IdentitySourceError && e.reason === "bad_endpoint",
  );
});
