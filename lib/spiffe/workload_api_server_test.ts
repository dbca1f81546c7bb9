import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { Client, credentials, Metadata, status, type StatusObject } from "@grpc/grpc-js";
import { createDevCa } from "./dev_ca.ts";
import { concatBytes, pemToDerList } from "./pem.ts";
import {
  decodeX509BundlesResponse,
  decodeX509SvidResponse,
  FETCH_X509_BUNDLES_PATH,
  FETCH_X509_SVID_PATH,
  SECURITY_HEADER,
} from "./workload_api_proto.ts";
import { MISSING_HEADER_MESSAGE, startWorkloadApiServer } from "./workload_api_server.ts";

const TD = "spike.ist";

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A raw stream call, collecting frames, with helpers to await the next frame and the final status. */
function openStream(client: Client, path: string, withHeader: boolean) {
  const metadata = new Metadata();
  if (withHeader) metadata.set(SECURITY_HEADER, "true");
  const call = client.makeServerStreamRequest<Uint8Array, Uint8Array>(
    path,
    (b) => Buffer.from(b),
    // A plain Uint8Array view, so decoded fields compare equal to plain arrays.
    (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
    new Uint8Array(0),
    metadata,
    {},
  );
  const frames: Uint8Array[] = [];
  let waiter: (() => void) | undefined;
  call.on("data", (frame: Uint8Array) => {
    frames.push(frame);
    waiter?.();
  });
  call.on("error", () => {});
  const ended = new Promise<StatusObject>((resolve) => call.on("status", resolve));
  return {
    call,
    ended,
    frame: async (n: number): Promise<Uint8Array> => {
      while (frames.length < n) await within(new Promise<void>((r) => waiter = r), 5000, `frame ${n}`);
      return frames[n - 1]!;
    },
  };
}

async function setup() {
  const ca = await createDevCa({ trustDomain: TD });
  const dir = await Deno.makeTempDir({ prefix: "spike_wlapi_" });
  const socketPath = join(dir, "api.sock");
  return { ca, dir, socketPath };
}

Deno.test("workload API server streams the identity and pushes set()", async () => {
  const { ca, dir, socketPath } = await setup();
  const first = await ca.issue(`spiffe://${TD}/w`);
  const second = await ca.issue(`spiffe://${TD}/w`);
  const server = await startWorkloadApiServer({ socketPath, identity: first });
  assert.equal(server.endpoint, `unix://${socketPath}`);
  const client = new Client(server.endpoint, credentials.createInsecure());
  try {
    const svids = openStream(client, FETCH_X509_SVID_PATH, true);
    const response = decodeX509SvidResponse(await svids.frame(1));
    assert.equal(response.svids.length, 1);
    const svid = response.svids[0]!;
    assert.equal(svid.spiffeId, first.spiffeId);
    assert.deepEqual(svid.x509Svid, concatBytes(pemToDerList(first.certChainPem)));
    assert.deepEqual(svid.x509SvidKey, pemToDerList(first.privateKeyPem, "PRIVATE KEY")[0]);
    assert.deepEqual(svid.bundle, pemToDerList(ca.caCertPem)[0]);

    const bundles = openStream(client, FETCH_X509_BUNDLES_PATH, true);
    const bundleResponse = decodeX509BundlesResponse(await bundles.frame(1));
    assert.deepEqual([...bundleResponse.bundles.keys()], [TD]);
    assert.deepEqual(bundleResponse.bundles.get(TD), pemToDerList(ca.caCertPem)[0]);

    server.set(second);
    const pushed = decodeX509SvidResponse(await svids.frame(2));
    assert.deepEqual(pushed.svids[0]!.x509Svid, concatBytes(pemToDerList(second.certChainPem)));
    await bundles.frame(2);

    await server.close();
    assert.equal((await within(svids.ended, 5000, "stream end")).code, status.OK);
    await bundles.ended;
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workload API server answers InvalidArgument without the security header", async () => {
  const { ca, dir, socketPath } = await setup();
  const server = await startWorkloadApiServer({ socketPath, identity: await ca.issue(`spiffe://${TD}/w`) });
  const client = new Client(server.endpoint, credentials.createInsecure());
  try {
    for (const path of [FETCH_X509_SVID_PATH, FETCH_X509_BUNDLES_PATH]) {
      const stream = openStream(client, path, false);
      const ended = await within(stream.ended, 5000, "status");
      assert.equal(ended.code, status.INVALID_ARGUMENT);
      assert.equal(ended.details, MISSING_HEADER_MESSAGE);
    }
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workload API server leaves the JWT methods unimplemented", async () => {
  const { ca, dir, socketPath } = await setup();
  const server = await startWorkloadApiServer({ socketPath, identity: await ca.issue(`spiffe://${TD}/w`) });
  const client = new Client(server.endpoint, credentials.createInsecure());
  try {
    const metadata = new Metadata();
    metadata.set(SECURITY_HEADER, "true");
    const code = await within(
      new Promise<number>((resolve) => {
        client.makeUnaryRequest<Uint8Array, Uint8Array>(
          "/SpiffeWorkloadAPI/FetchJWTSVID",
          (b) => Buffer.from(b),
          (b) => b,
          new Uint8Array(0),
          metadata,
          (err) => resolve(err?.code ?? status.OK),
        );
      }),
      5000,
      "unary status",
    );
    assert.equal(code, status.UNIMPLEMENTED);
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workload API server replaces a stale socket but not a live one", async () => {
  const { ca, dir, socketPath } = await setup();
  const identity = await ca.issue(`spiffe://${TD}/w`);
  // A socket file whose listener is gone, as a crashed agent leaves behind.
  const stale = Deno.listen({ transport: "unix", path: socketPath });
  stale.close();
  await Deno.writeFile(join(dir, "plain"), new Uint8Array(1));
  const server = await startWorkloadApiServer({ socketPath, identity });
  try {
    await assert.rejects(startWorkloadApiServer({ socketPath, identity }), /in use/);
    await assert.rejects(startWorkloadApiServer({ socketPath: join(dir, "plain"), identity }), /not a socket/);
    await assert.rejects(startWorkloadApiServer({ socketPath: "relative.sock", identity }), /absolute/);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
