/**
 * A minimal SPIFFE Workload API server: it serves the identity it is given
 * over `FetchX509SVID` and `FetchX509Bundles` on a Unix socket, and pushes a
 * new response to every open stream when {@linkcode WorkloadApiServer.set}
 * rotates it. Used by tests and by the development mode in place of a SPIRE
 * Agent; it does no workload attestation (every caller gets the identity).
 *
 * Like SPIRE, it refuses calls without the `workload.spiffe.io: true`
 * metadata header with `InvalidArgument`. The JWT methods are not served,
 * so gRPC answers them `Unimplemented`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  Server,
  ServerCredentials,
  type ServerWritableStream,
  type ServiceDefinition,
  status,
  type UntypedHandleCall,
} from "@grpc/grpc-js";
import type { X509Identity } from "./identity.ts";
import { parseSpiffeId } from "./id.ts";
import { concatBytes, pemToDerList } from "./pem.ts";
import {
  decodeX509BundlesRequest,
  decodeX509SvidRequest,
  encodeX509BundlesRequest,
  encodeX509BundlesResponse,
  encodeX509SvidRequest,
  encodeX509SvidResponse,
  FETCH_X509_BUNDLES_PATH,
  FETCH_X509_SVID_PATH,
  SECURITY_HEADER,
  type X509BundlesResponse,
  type X509SvidResponse,
} from "./workload_api_proto.ts";
import { type Logger, silentLogger } from "../log/logger.ts";

/** A running Workload API server. */
export interface WorkloadApiServer {
  /** The endpoint clients use, `unix:///<socketPath>`. */
  readonly endpoint: string;
  /** Serves `identity` from now on and pushes it to every open stream. */
  set(identity: X509Identity): void;
  /** Ends open streams, stops listening and removes the socket. Safe to call twice. */
  close(): Promise<void>;
}

/** Options for {@linkcode startWorkloadApiServer}. */
export interface WorkloadApiServerOptions {
  /** Absolute path of the Unix socket to listen on. */
  socketPath: string;
  /** The identity served until {@linkcode WorkloadApiServer.set} replaces it. */
  identity: X509Identity;
  /** Diagnostics; default silent. */
  log?: Logger;
}

/** The message SPIRE answers calls without the security header with. */
export const MISSING_HEADER_MESSAGE = "security header missing from request";

/** How long close() lets streams finish before cutting them off. */
const SHUTDOWN_GRACE_MS = 1000;

/**
 * Starts a Workload API server on `socketPath`. A stale socket left by a
 * dead process is replaced; a socket with a live listener is not.
 *
 * @throws when the path is relative, is in use, or is not a socket.
 */
export async function startWorkloadApiServer(options: WorkloadApiServerOptions): Promise<WorkloadApiServer> {
  const { socketPath } = options;
  const log = options.log ?? silentLogger;
  if (!socketPath.startsWith("/")) throw new Error(`Workload API socket path must be absolute: ${socketPath}`);
  await clearStaleSocket(socketPath);

  let svidResponse = svidResponseOf(options.identity);
  let bundlesResponse = bundlesResponseOf(options.identity);
  const svidStreams = new Set<ServerWritableStream<unknown, X509SvidResponse>>();
  const bundleStreams = new Set<ServerWritableStream<unknown, X509BundlesResponse>>();

  const stream = <T>(streams: Set<ServerWritableStream<unknown, T>>, first: () => T) =>
  (
    call: ServerWritableStream<unknown, T>,
  ) => {
    if (!call.metadata.get(SECURITY_HEADER).some((v) => v === "true")) {
      call.emit("error", { code: status.INVALID_ARGUMENT, details: MISSING_HEADER_MESSAGE });
      return;
    }
    streams.add(call);
    const forget = () => streams.delete(call);
    call.on("cancelled", forget);
    call.on("close", forget);
    call.on("error", forget);
    call.write(first());
  };

  const server = new Server();
  server.addService(
    workloadApiDefinition(),
    {
      FetchX509SVID: stream(svidStreams, () => svidResponse),
      FetchX509Bundles: stream(bundleStreams, () => bundlesResponse),
    } satisfies Record<string, UntypedHandleCall>,
  );

  await new Promise<void>((resolve, reject) => {
    server.bindAsync(
      `unix://${socketPath}`,
      ServerCredentials.createInsecure(),
      (err) => err ? reject(err) : resolve(),
    );
  });
  log.info("Workload API server listening", { socket: socketPath });

  let closing: Promise<void> | undefined;
  return {
    endpoint: `unix://${socketPath}`,
    set(identity) {
      if (closing !== undefined) throw new Error("Workload API server is closed");
      // Build both before swapping, so a bad identity changes nothing.
      const nextSvid = svidResponseOf(identity);
      const nextBundles = bundlesResponseOf(identity);
      svidResponse = nextSvid;
      bundlesResponse = nextBundles;
      for (const call of svidStreams) call.write(svidResponse);
      for (const call of bundleStreams) call.write(bundlesResponse);
    },
    close() {
      closing ??= (async () => {
        for (const call of [...svidStreams, ...bundleStreams]) call.end();
        svidStreams.clear();
        bundleStreams.clear();
        await shutdown(server);
        await Deno.remove(socketPath).catch(() => {});
      })();
      return closing;
    },
  };
}

/** The service definition, with serializers for our hand-written messages. */
function workloadApiDefinition(): ServiceDefinition {
  const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    FetchX509SVID: {
      path: FETCH_X509_SVID_PATH,
      requestStream: false,
      responseStream: true,
      requestSerialize: () => toBuffer(encodeX509SvidRequest()),
      requestDeserialize: (b: Buffer) => decodeX509SvidRequest(b),
      responseSerialize: (m: X509SvidResponse) => toBuffer(encodeX509SvidResponse(m)),
      responseDeserialize: (b: Buffer) => b,
    },
    FetchX509Bundles: {
      path: FETCH_X509_BUNDLES_PATH,
      requestStream: false,
      responseStream: true,
      requestSerialize: () => toBuffer(encodeX509BundlesRequest()),
      requestDeserialize: (b: Buffer) => decodeX509BundlesRequest(b),
      responseSerialize: (m: X509BundlesResponse) => toBuffer(encodeX509BundlesResponse(m)),
      responseDeserialize: (b: Buffer) => b,
    },
  };
}

function svidResponseOf(identity: X509Identity): X509SvidResponse {
  const chain = pemToDerList(identity.certChainPem, "CERTIFICATE");
  if (chain.length === 0) throw new Error(`identity ${identity.spiffeId} has no certificate`);
  const keys = pemToDerList(identity.privateKeyPem, "PRIVATE KEY");
  if (keys.length !== 1) throw new Error(`identity ${identity.spiffeId} needs exactly one PKCS#8 private key`);
  return {
    svids: [{
      spiffeId: identity.spiffeId,
      x509Svid: concatBytes(chain),
      x509SvidKey: keys[0]!,
      bundle: concatBytes(pemToDerList(identity.trustBundlePem, "CERTIFICATE")),
      hint: "",
    }],
    crl: [],
    federatedBundles: new Map(),
  };
}

function bundlesResponseOf(identity: X509Identity): X509BundlesResponse {
  const trustDomain = parseSpiffeId(identity.spiffeId).trustDomain;
  const bundle = concatBytes(pemToDerList(identity.trustBundlePem, "CERTIFICATE"));
  return { crl: [], bundles: new Map([[trustDomain, bundle]]) };
}

async function shutdown(server: Server): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => resolve());
  });
  clearTimeout(timer);
}

/** Removes a socket file nobody listens on; refuses to touch anything else. */
async function clearStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!info.isSocket) throw new Error(`${path} exists and is not a socket`);
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch {
    await Deno.remove(path);
    return;
  }
  throw new Error(`${path} is in use by another server`);
}
