/**
 * An HTTPS client for SPIFFE mTLS: it presents the current X.509-SVID,
 * validates the server's SVID chain against the trust bundle, and only then
 * checks the server's SPIFFE ID with a predicate, before any request byte is
 * sent. There is no hostname verification: SVIDs name workloads, not hosts.
 *
 * Connections are kept alive and reused. After an SVID rotation the next new
 * connection uses the new SVID and bundle; requests already running finish on
 * their old connection.
 *
 * @module
 */

import https from "node:https";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import type { IncomingMessage } from "node:http";
import type { IdentitySource, X509Identity } from "./identity.ts";
import type { IdPredicate } from "./roles.ts";
import { MtlsError, SvidError } from "./errors.ts";
import { parseTrustBundle, type TrustBundle, validatePeerSvid } from "./svid.ts";

/** Options for {@linkcode createMtlsClient}. */
export interface MtlsClientOptions {
  /** This client's SVID and trust bundle. */
  identity: IdentitySource;
  /** Which server SPIFFE IDs may be talked to (e.g. `isNexus`). */
  serverId: IdPredicate;
  /** Deadline for a whole call (connect, send, receive); default 30 s. */
  timeoutMs?: number;
  /** Largest response body accepted; default 16 MiB. */
  maxResponseBytes?: number;
  /** Most concurrent connections per server; default 16. */
  maxSockets?: number;
  /** Clock for certificate validity; default the system clock. */
  now?: () => Date;
}

/** A response, fully read. */
export interface MtlsResponse {
  /** HTTP status code. */
  readonly status: number;
  /** Response headers, lowercase names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body bytes. */
  readonly body: Uint8Array;
}

/** A SPIFFE mTLS HTTP client. */
export interface MtlsClient {
  /** POSTs `body` to `url` (an `https:` URL). */
  post(url: string | URL, body: Uint8Array | string, headers?: Record<string, string>): Promise<MtlsResponse>;
  /** Sends any method; `body` is optional. */
  request(
    method: string,
    url: string | URL,
    body?: Uint8Array | string,
    headers?: Record<string, string>,
  ): Promise<MtlsResponse>;
  /** Drops all connections and stops following rotations. Safe to call twice. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const TLS_MIN_VERSION = "TLSv1.2";

/** The connection pool for one identity; replaced when the identity rotates. */
interface Pool {
  readonly agent: https.Agent;
  inFlight: number;
  retired: boolean;
}

/** Creates a client. No connection is made until the first call. */
export function createMtlsClient(options: MtlsClientOptions): MtlsClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const now = options.now ?? (() => new Date());
  let pool: Pool | undefined;
  let closed = false;
  // Calls in flight, so close() can fail them at once instead of letting
  // them wait out their timeout (a peer may hang mid-handshake).
  const pending = new Set<(err: Error) => void>();

  const retire = (old: Pool | undefined) => {
    if (!old) return;
    old.retired = true;
    if (old.inFlight === 0) old.agent.destroy();
  };
  const unsubscribe = options.identity.onChange(() => {
    // Build lazily on the next call, from whatever is current then.
    retire(pool);
    pool = undefined;
  });

  const currentPool = async (): Promise<Pool> => {
    if (pool) return pool;
    const identity = await options.identity.ready().then(() => options.identity.current());
    if (closed) throw new MtlsError("closed", "mTLS client is closed");
    pool ??= makePool(identity, options.serverId, now, options.maxSockets ?? 16);
    return pool;
  };

  const request = async (
    method: string,
    url: string | URL,
    body?: Uint8Array | string,
    headers: Record<string, string> = {},
  ): Promise<MtlsResponse> => {
    if (closed) throw new MtlsError("closed", "mTLS client is closed");
    const target = new URL(url);
    if (target.protocol !== "https:") throw new MtlsError("protocol", `not an https URL: ${target.origin}`);
    const active = await currentPool();
    active.inFlight++;
    try {
      return await send(active.agent, method, target, body, headers, timeoutMs, maxResponseBytes, pending);
    } finally {
      active.inFlight--;
      if (active.retired && active.inFlight === 0) active.agent.destroy();
    }
  };

  return {
    post: (url, body, headers) => request("POST", url, body, headers),
    request,
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const abort of pending) abort(new MtlsError("closed", "mTLS client is closed"));
      pool?.agent.destroy();
      pool = undefined;
    },
  };
}

/** A keep-alive agent that vets each new connection's server SVID before use. */
function makePool(identity: X509Identity, serverId: IdPredicate, now: () => Date, maxSockets: number): Pool {
  const bundle = parseTrustBundle(identity.trustBundlePem);
  const agent = new SvidAgent(bundle, serverId, now, {
    keepAlive: true,
    maxSockets,
    key: new TextDecoder().decode(identity.privateKeyPem),
    cert: identity.certChainPem,
    minVersion: TLS_MIN_VERSION,
    // The chain is checked by validatePeerSvid and names are not checked at
    // all (SVIDs carry no DNS names); the ID predicate takes their place.
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  return { agent, inFlight: 0, retired: false };
}

type ConnectCallback = (err: Error | null, stream: Duplex) => void;

class SvidAgent extends https.Agent {
  readonly #bundle: TrustBundle;
  readonly #serverId: IdPredicate;
  readonly #now: () => Date;
  /** Sockets still in their handshake: not yet known to the base agent. */
  readonly #handshaking = new Set<tls.TLSSocket>();

  constructor(bundle: TrustBundle, serverId: IdPredicate, now: () => Date, options: https.AgentOptions) {
    super(options);
    this.#bundle = bundle;
    this.#serverId = serverId;
    this.#now = now;
  }

  // The agent hands the socket to the request only through `callback`, so a
  // server that fails the checks never receives the request.
  // deno-lint-ignore no-explicit-any
  override createConnection(options: any, callback?: ConnectCallback): any {
    const origin = `https://${formatHost(options.host ?? "localhost")}:${options.port ?? 443}`;
    let done = false;
    const finish = (err: Error | null, socket?: tls.TLSSocket) => {
      if (done) return;
      done = true;
      // On failure node's agent ignores the stream argument.
      callback?.(err, socket as Duplex);
    };
    const socket = tls.connect(options);
    this.#handshaking.add(socket);
    socket.once("close", () => this.#handshaking.delete(socket));
    socket.once("secureConnect", () => {
      this.#handshaking.delete(socket);
      try {
        const svid = validatePeerSvid(socket.getPeerCertificate(true), this.#bundle, this.#now());
        if (!this.#serverId(svid.spiffeId)) {
          throw new MtlsError("server_id_not_allowed", `server SPIFFE ID ${svid.spiffeId} is not allowed (${origin})`);
        }
        finish(null, socket);
      } catch (err) {
        socket.destroy();
        finish(
          err instanceof SvidError
            ? new MtlsError("server_svid_invalid", `server at ${origin} has an invalid SVID: ${err.message}`, {
              cause: err,
            })
            : err instanceof Error
            ? err
            : new Error(String(err)),
        );
      }
    });
    socket.once("error", (err: Error & { code?: string }) => finish(connectError(err, origin)));
    socket.once(
      "close",
      () => finish(new MtlsError("connect_failed", `connection to ${origin} closed during handshake`)),
    );
    return undefined;
  }

  /** Also drops connections that are still in their handshake. */
  override destroy(): void {
    for (const socket of this.#handshaking) socket.destroy();
    this.#handshaking.clear();
    super.destroy();
  }
}

function send(
  agent: https.Agent,
  method: string,
  url: URL,
  body: Uint8Array | string | undefined,
  headers: Record<string, string>,
  timeoutMs: number,
  maxResponseBytes: number,
  pending: Set<(err: Error) => void>,
): Promise<MtlsResponse> {
  const payload = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      pending.delete(abort);
      reject(err);
    };
    const abort = (err: Error) => {
      fail(err);
      req.destroy(err);
    };
    pending.add(abort);
    const req = https.request(url, {
      method,
      agent,
      headers: {
        ...headers,
        ...(payload ? { "content-length": String(payload.length) } : {}),
      },
    });
    const timer = setTimeout(() => {
      const err = new MtlsError("timeout", `${method} ${url.origin}${url.pathname} timed out after ${timeoutMs} ms`);
      fail(err);
      req.destroy(err);
    }, timeoutMs);
    req.once("error", (err: Error & { code?: string }) => fail(connectError(err, url.origin)));
    req.once("response", (res: IncomingMessage) => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      res.on("data", (chunk: Uint8Array) => {
        size += chunk.length;
        if (size > maxResponseBytes) {
          const err = new MtlsError("protocol", `response from ${url.origin} exceeds ${maxResponseBytes} bytes`);
          fail(err);
          res.destroy(err);
          return;
        }
        chunks.push(chunk);
      });
      res.once("error", (err) => fail(connectError(err, url.origin)));
      res.once("end", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        pending.delete(abort);
        resolve({ status: res.statusCode ?? 0, headers: flattenHeaders(res), body: concat(chunks, size) });
      });
    });
    req.end(payload);
  });
}

function connectError(err: Error & { code?: string }, origin: string): Error {
  if (err instanceof MtlsError) return err;
  switch (err.code) {
    case "ECONNREFUSED":
      return new MtlsError("connect_failed", `connection refused to ${origin}`, { cause: err });
    case "ECONNRESET":
      return new MtlsError("connect_failed", `connection reset by ${origin}`, { cause: err });
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new MtlsError("connect_failed", `cannot resolve host of ${origin}`, { cause: err });
    default:
      return new MtlsError("connect_failed", `request to ${origin} failed: ${err.message}`, { cause: err });
  }
}

function flattenHeaders(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
