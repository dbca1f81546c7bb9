/**
 * An {@linkcode IdentitySource} fed by the SPIFFE Workload API (a SPIRE
 * Agent's socket): one long-lived `FetchX509SVID` stream whose every
 * response carries the current SVID, so a rotation reaches new connections
 * without a restart.
 *
 * When the stream breaks (agent restart, socket gone) the source keeps
 * serving the last good identity and reconnects with exponential backoff.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type ChannelOptions, Client, credentials, Metadata, type StatusObject } from "@grpc/grpc-js";
import type { IdentitySource, X509Identity } from "./identity.ts";
import { buildIdentity, IdentitySourceError } from "./identity_check.ts";
import { createIdentityState } from "./identity_state.ts";
import { splitConcatenatedDer } from "./pem.ts";
import { parseWorkloadApiEndpoint } from "./workload_api_endpoint.ts";
import {
  decodeX509SvidResponse,
  encodeX509SvidRequest,
  FETCH_X509_SVID_PATH,
  SECURITY_HEADER,
  type X509SvidResponse,
} from "./workload_api_proto.ts";
import { type Logger, silentLogger } from "../log/logger.ts";

export { parseWorkloadApiEndpoint, type WorkloadApiEndpoint } from "./workload_api_endpoint.ts";

/** Options for {@linkcode createWorkloadApiSource}. */
export interface WorkloadApiSourceOptions {
  /** `unix:///path/to/api.sock` or `tcp://IP:port` (`SPIFFE_ENDPOINT_SOCKET`). */
  endpoint: string;
  /** How long ready() waits for the first SVID; default 10 000 ms. */
  readyTimeoutMs?: number;
  /** First reconnect delay; default 100 ms, doubled per failure. */
  initialBackoffMs?: number;
  /** Longest reconnect delay; default 3000 ms. */
  maxBackoffMs?: number;
  /** Diagnostics (connects, rotations, stream errors); default silent. */
  log?: Logger;
}

/**
 * Streams X.509-SVIDs from the Workload API at `options.endpoint`. The first
 * SVID of each response becomes the identity; its trust bundle is the SVID's
 * own bundle plus every federated bundle. A response whose SVID fails the
 * checks (key not matching the leaf, no SPIFFE ID) is logged and skipped.
 *
 * @throws {IdentitySourceError} `bad_endpoint` when the endpoint is malformed.
 */
export function createWorkloadApiSource(options: WorkloadApiSourceOptions): IdentitySource {
  const { endpoint } = options;
  const target = parseWorkloadApiEndpoint(endpoint);
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const initialBackoffMs = options.initialBackoffMs ?? 100;
  const maxBackoffMs = Math.max(options.maxBackoffMs ?? 3000, initialBackoffMs);
  const log = options.log ?? silentLogger;
  const name = `Workload API at ${endpoint}`;

  let lastProblem = "no response yet";
  const state = createIdentityState({
    readyTimeoutMs,
    log,
    name,
    timeoutError: () =>
      new IdentitySourceError(
        "timeout",
        `no X.509-SVID from the Workload API at ${endpoint} within ${readyTimeoutMs} ms: ${lastProblem}`,
      ),
  });

  // gRPC's own reconnect backoff (up to two minutes by default) would sit
  // under ours and delay recovery after an agent restart; keep it as short.
  const channelOptions: ChannelOptions = {
    "grpc.initial_reconnect_backoff_ms": initialBackoffMs,
    "grpc.max_reconnect_backoff_ms": maxBackoffMs,
  };
  const client = new Client(target.grpcTarget, credentials.createInsecure(), channelOptions);
  const metadata = new Metadata();
  metadata.set(SECURITY_HEADER, "true");

  let backoffMs = initialBackoffMs;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let call: ReturnType<Client["makeServerStreamRequest"]> | undefined;
  let callEnded: Promise<void> = Promise.resolve();

  const onResponse = (bytes: Uint8Array) => {
    let response: X509SvidResponse;
    try {
      response = decodeX509SvidResponse(bytes);
    } catch (e) {
      lastProblem = `undecodable response (${e instanceof Error ? e.message : e})`;
      log.warn("ignoring undecodable Workload API response", { source: name });
      return;
    }
    try {
      const identity = identityOf(response);
      backoffMs = initialBackoffMs;
      const first = !state.hasIdentity;
      if (state.publish(identity)) {
        log.info(first ? "SVID received" : "SVID rotated", { source: name, spiffeId: identity.spiffeId });
      }
    } catch (e) {
      // An event handler must not throw: whatever went wrong, keep the last good identity.
      lastProblem = e instanceof Error ? e.message : String(e);
      log.warn("ignoring Workload API response", { source: name, error: lastProblem });
    } finally {
      // The key's DER is a view into the received frame; the identity holds its own PEM copy.
      for (const svid of response.svids) svid.x509SvidKey.fill(0);
    }
  };

  const connect = () => {
    retry = undefined;
    if (state.closed) return;
    const stream = client.makeServerStreamRequest<Uint8Array, Uint8Array>(
      FETCH_X509_SVID_PATH,
      (request) => Buffer.from(request),
      (frame) => new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength),
      encodeX509SvidRequest(),
      metadata,
      {},
    );
    call = stream;
    callEnded = new Promise((resolve) => {
      stream.on("data", onResponse);
      // 'status' always follows, and carries the same information.
      stream.on("error", () => {});
      stream.on("status", (status: StatusObject) => {
        if (call === stream) call = undefined;
        resolve();
        if (state.closed) return;
        lastProblem = `stream ended: ${status.code} ${status.details}`;
        log.warn("Workload API stream ended, reconnecting", {
          source: name,
          code: status.code,
          details: status.details,
          retryInMs: backoffMs,
        });
        retry = setTimeout(connect, backoffMs);
        backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
      });
    });
  };
  connect();

  let closing: Promise<void> | undefined;
  return {
    ready: () => state.ready(),
    current: () => state.current(),
    onChange: (listener) => state.onChange(listener),
    close() {
      closing ??= (async () => {
        state.close();
        if (retry !== undefined) clearTimeout(retry);
        retry = undefined;
        call?.cancel();
        await callEnded;
        client.close();
      })();
      return closing;
    },
  };
}

/** The default SVID of a response, checked, with every bundle merged in. */
function identityOf(response: X509SvidResponse): X509Identity {
  const svid = response.svids[0];
  if (svid === undefined) throw new IdentitySourceError("invalid_svid", "Workload API response holds no SVID");
  const where = `Workload API SVID ${JSON.stringify(svid.spiffeId)}`;
  const split = (bytes: Uint8Array, what: string) => {
    try {
      return splitConcatenatedDer(bytes);
    } catch (e) {
      throw new IdentitySourceError("invalid_svid", `${where}: ${what} is not DER (${(e as Error).message})`);
    }
  };
  const bundleDer = split(svid.bundle, "bundle");
  for (const [trustDomain, bundle] of response.federatedBundles) {
    bundleDer.push(...split(bundle, `federated bundle ${JSON.stringify(trustDomain)}`));
  }
  const identity = buildIdentity(
    { chainDer: split(svid.x509Svid, "x509_svid"), keyDer: svid.x509SvidKey, bundleDer },
    where,
  );
  if (svid.spiffeId !== "" && svid.spiffeId !== identity.spiffeId) {
    identity.privateKeyPem.fill(0);
    throw new IdentitySourceError("invalid_svid", `${where}: leaf certificate is for ${identity.spiffeId}`);
  }
  return identity;
}
