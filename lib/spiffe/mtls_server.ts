/**
 * An HTTPS server that asks every client for its X.509-SVID and tells the
 * handler who the client is, or why it could not be authenticated.
 *
 * The TLS layer accepts any client (`rejectUnauthorized: false`) so that the
 * app can still answer unauthenticated requests such as `GET /health` and
 * give SPIKE's `401 {"err":"access_unauthorized"}` everywhere else; the SVID is
 * validated here with {@linkcode validatePeerSvid} and the verdict handed to
 * the handler. After an SVID rotation, new connections get the new
 * certificate without a restart.
 *
 * Hostile clients are bounded here: a connection must finish its TLS
 * handshake within `handshakeTimeoutMs`, at most `maxConnections` are open
 * at once (more are closed as they arrive), and what node's HTTP parser
 * refuses (bad syntax, headers too large, an unknown `Expect`, no `Host`) is
 * answered with the JSON error contract and a closed connection instead of
 * node's empty answers. CONNECT requests reach the handler like any other
 * request (their connection closes after the answer).
 *
 * @module
 */

import https from "node:https";
import { type IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { NO_CACHE_HEADERS } from "../api/no_cache.ts";
import type { IdentitySource, X509Identity } from "./identity.ts";
import type { IdPredicate } from "./roles.ts";
import { SvidError, type SvidErrorReason } from "./errors.ts";
import { parseTrustBundle, type TrustBundle, validatePeerSvid } from "./svid.ts";
import { createFetchHandler, DISCARD_MIN_BYTES, type FetchApp } from "./fetch_adapter.ts";
import { PeerVerdicts } from "./peer_verdicts.ts";

/** An authenticated client. */
export interface PeerInfo {
  /** Always true: tells {@linkcode PeerInfo} and {@linkcode PeerError} apart. */
  readonly ok: true;
  /** The client's SPIFFE ID. */
  readonly spiffeId: string;
  /** The trust domain of that ID. */
  readonly trustDomain: string;
  /** When the client's SVID (or a CA above it) expires. */
  readonly notAfter: Date;
}

/** Why a client has no usable identity. */
export type PeerErrorReason = SvidErrorReason | "id_not_allowed" | "internal";

/** A client that could not be authenticated, and why. */
export interface PeerError {
  /** Always false. */
  readonly ok: false;
  /** Machine-readable cause; `no_certificate` when the client sent none. */
  readonly reason: PeerErrorReason;
  /** Human-readable cause, for logs (no key material in it). */
  readonly message: string;
  /** The SPIFFE ID, when the SVID was valid but not allowed. */
  readonly spiffeId?: string;
}

/** The verdict on a client: who it is, or why that is unknown. */
export type Peer = PeerInfo | PeerError;

/**
 * Handles one request; `peer` says who sent it. A returned promise that
 * rejects (or a throw) is answered with an opaque 500.
 */
export type MtlsHandler = (req: IncomingMessage, res: ServerResponse, peer: Peer) => unknown;

/** Options for {@linkcode createMtlsServer}. */
export interface MtlsServerOptions {
  /** Where the server's own SVID and the trust bundle come from. */
  identity: IdentitySource;
  /** Called for every request. */
  handler: MtlsHandler;
  /**
   * Which client IDs count as authenticated; others get a
   * {@linkcode PeerError} with reason `id_not_allowed`. Default: any valid SVID.
   */
  authorizePeer?: IdPredicate;
  /** Clock for certificate validity; default the system clock. */
  now?: () => Date;
  /** Told about TLS handshake failures and failed context reloads (for logging). */
  onError?: (error: Error) => void;
  /** Time allowed to receive request headers; default 10 s (slowloris guard). */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request; default 30 s. */
  requestTimeoutMs?: number;
  /** Idle keep-alive time; default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Time allowed for a new connection's TLS handshake; default 10 s. */
  handshakeTimeoutMs?: number;
  /** Most connections open at once; more are closed on arrival. Default 1024. */
  maxConnections?: number;
}

/** A running (or ready to listen) mTLS server. */
export interface MtlsServer {
  /** The underlying `node:https` server. */
  readonly server: https.Server;
  /** The bound port; throws before {@linkcode MtlsServer.listen} resolves. */
  readonly port: number;
  /** Starts listening (`port` 0 picks a free one); resolves with the bound port. */
  listen(port: number, host?: string): Promise<number>;
  /** Stops listening and drops open connections. Safe to call twice. */
  close(): Promise<void>;
}

/** Hono-style env passed to a fetch app by {@linkcode serveHono}. */
export interface MtlsEnv {
  /** Who the client is, or why that is unknown. */
  readonly peer: Peer;
  /** The client's IP address, when known. */
  readonly remoteAddress?: string;
}

/** Options for {@linkcode serveHono}: the server's, minus the handler. */
export interface ServeHonoOptions extends Omit<MtlsServerOptions, "handler"> {
  /** Largest request body accepted; more is answered `413 {"err":"api_payload_too_large"}`. */
  maxBodyBytes: number;
}

const TLS_MIN_VERSION = "TLSv1.2";

/** Default of {@linkcode MtlsServerOptions.handshakeTimeoutMs}. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default of {@linkcode MtlsServerOptions.maxConnections}. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/** The JSON answer to each kind of request node's HTTP parser refuses. */
const PARSER_REFUSALS: Readonly<Record<string, { status: number; reason: string; err: string }>> = Object.freeze({
  HPE_HEADER_OVERFLOW: { status: 431, reason: "Request Header Fields Too Large", err: "api_bad_request" },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: "Request Timeout", err: "api_bad_request" },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, reason: "Payload Too Large", err: "api_payload_too_large" },
});
const BAD_REQUEST = { status: 400, reason: "Bad Request", err: "api_bad_request" };
/** How long a connection refused by the parser is kept for its client to read the answer and close. */
const REFUSAL_LINGER_MS = 2_000;

/**
 * Creates the server with the identity source's current SVID (waiting for
 * the source to be ready). Call `listen` to start it.
 */
export async function createMtlsServer(options: MtlsServerOptions): Promise<MtlsServer> {
  const now = options.now ?? (() => new Date());
  const first = await options.identity.ready();
  let bundle = parseTrustBundle(first.trustBundlePem);
  // One verdict per TLS connection; revalidated if the bundle changes or the
  // SVID expires while a keep-alive connection is still open.
  const verdicts = new WeakMap<TLSSocket, { bundle: TrustBundle; peer: Peer }>();
  // Across connections: a client seen before is known by its leaf's hash.
  const known = new PeerVerdicts();
  const sockets = new Set<Socket>();
  let closed = false;

  const server = https.createServer({
    ...tlsContextOptions(first),
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: TLS_MIN_VERSION,
    handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    // Checked below, so the answer follows the JSON error contract.
    requireHostHeader: false,
  });
  server.headersTimeout = options.headersTimeoutMs ?? 10_000;
  server.requestTimeout = options.requestTimeoutMs ?? 30_000;
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;

  const peerOf = (socket: TLSSocket): Peer => {
    const cached = verdicts.get(socket);
    const at = now();
    if (cached && cached.bundle === bundle && (!cached.peer.ok || at.getTime() <= cached.peer.notAfter.getTime())) {
      return cached.peer;
    }
    const peer = authenticate(socket, bundle, at, known, options.authorizePeer);
    verdicts.set(socket, { bundle, peer });
    return peer;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
      // HTTP/1.1 requires Host (RFC 9112 §3.2).
      res.shouldKeepAlive = false;
      sendJson(res, 400, { err: "api_bad_request" });
      return;
    }
    let peer: Peer;
    try {
      peer = peerOf(req.socket as TLSSocket);
    } catch (err) {
      peer = { ok: false, reason: "internal", message: `peer check failed: ${errorText(err)}` };
    }
    Promise.resolve()
      .then(() => options.handler(req, res, peer))
      .catch((err) => {
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
        if (!res.headersSent) sendJson(res, 500, { err: "api_internal_error" });
        else res.destroy();
      });
  };
  server.on("request", onRequest);
  // Without this node drops CONNECT requests unanswered; the handler answers
  // them (a 400 from the apps) and the connection closes afterwards.
  server.on("connect", (req: IncomingMessage, socket: Duplex) => {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once("finish", () => {
      res.detachSocket(socket as Socket);
      (socket as Socket).destroySoon();
    });
    onRequest(req, res);
  });
  server.on("checkExpectation", (_req: IncomingMessage, res: ServerResponse) => {
    res.shouldKeepAlive = false;
    sendJson(res, 417, { err: "api_bad_request" });
  });
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => refuseUnparsed(err, socket));
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", (err: Error, socket: Duplex) => {
    options.onError?.(err);
    // A failed or timed-out handshake must not keep its socket.
    socket.destroy();
  });

  const unsubscribe = options.identity.onChange((identity) => {
    try {
      const nextBundle = parseTrustBundle(identity.trustBundlePem);
      server.setSecureContext({ ...tlsContextOptions(identity), minVersion: TLS_MIN_VERSION });
      bundle = nextBundle;
      known.clear();
    } catch (err) {
      // Keep serving with the previous SVID rather than going down.
      options.onError?.(new Error(`could not load rotated SVID: ${errorText(err)}`));
    }
  });

  let boundPort: number | undefined;
  return {
    server,
    get port(): number {
      if (boundPort === undefined) throw new Error("server is not listening");
      return boundPort;
    },
    listen(port: number, host?: string): Promise<number> {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once("error", onError);
        server.listen(port, host, () => {
          server.off("error", onError);
          // Later errors (a failed accept) are reported, never thrown.
          server.on("error", (err: Error) => options.onError?.(err));
          const address = server.address();
          boundPort = typeof address === "object" && address !== null ? address.port : port;
          resolve(boundPort);
        });
      });
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      unsubscribe();
      return new Promise((resolve) => {
        if (!server.listening) {
          for (const socket of sockets) socket.destroy();
          resolve();
          return;
        }
        server.close(() => resolve());
        // Keep-alive connections would hold close() open until they idle out.
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}

/**
 * Serves a fetch-style app (a Hono app: `app.fetch(request, env)`) over mTLS.
 * The app receives `env.peer` ({@linkcode MtlsEnv}); bodies over
 * `maxBodyBytes` are refused with 413 as they stream in.
 */
export function serveHono(app: FetchApp<MtlsEnv>, options: ServeHonoOptions): Promise<MtlsServer> {
  const { maxBodyBytes, ...serverOptions } = options;
  const handle = createFetchHandler<MtlsEnv>(app, {
    maxBodyBytes,
    onError: options.onError,
    // A client with a valid SVID that was refused before its body mattered
    // (not ready, wrong role) gets its answer and keeps its connection; one
    // without gets no more than a small allowance read on its behalf before
    // the connection is closed, so a flood of anonymous bodies costs neither
    // memory nor CPU in proportion to what it sends.
    unreadBodyAllowance: (env) => env.peer.ok ? Math.max(DISCARD_MIN_BYTES, maxBodyBytes) : DISCARD_MIN_BYTES,
  });
  return createMtlsServer({
    ...serverOptions,
    handler: (req, res, peer) => handle(req, res, { peer, remoteAddress: req.socket.remoteAddress }),
  });
}

/**
 * Validates the client's SVID on `socket` and applies the ID predicate. A
 * leaf `known` from an earlier connection under this bundle skips the
 * chain check (its validity window is still checked at `now`); a resumed
 * TLS session goes through the same check, since it carries the
 * certificate of the handshake it resumes.
 */
function authenticate(
  socket: TLSSocket,
  bundle: TrustBundle,
  now: Date,
  known: PeerVerdicts,
  allowed?: IdPredicate,
): Peer {
  if (typeof socket.getPeerCertificate !== "function") {
    return { ok: false, reason: "no_certificate", message: "connection is not TLS" };
  }
  // The leaf alone is cheap to get; the whole chain (detailed objects) only on a miss.
  const leaf = socket.getPeerX509Certificate?.()?.raw;
  const fingerprint = leaf && leaf.length > 0 ? PeerVerdicts.fingerprint(leaf) : undefined;
  const hit = fingerprint === undefined ? undefined : known.lookup(fingerprint, bundle, now.getTime());
  if (hit) return verdictOf(hit.svid, hit.allowed);
  try {
    const svid = validatePeerSvid(socket.getPeerCertificate(true), bundle, now);
    const ok = !allowed || allowed(svid.spiffeId);
    if (fingerprint !== undefined) known.remember(fingerprint, bundle, svid, ok);
    return verdictOf(svid, ok);
  } catch (err) {
    if (err instanceof SvidError) return { ok: false, reason: err.reason, message: err.message };
    throw err;
  }
}

function verdictOf(svid: { spiffeId: string; trustDomain: string; notAfter: Date }, allowed: boolean): Peer {
  if (!allowed) {
    return {
      ok: false,
      reason: "id_not_allowed",
      message: `client SPIFFE ID ${svid.spiffeId} is not allowed`,
      spiffeId: svid.spiffeId,
    };
  }
  return { ok: true, spiffeId: svid.spiffeId, trustDomain: svid.trustDomain, notAfter: svid.notAfter };
}

function tlsContextOptions(identity: X509Identity): { key: string; cert: string; ca: string } {
  // node:tls needs the key as a string or Buffer; the identity keeps the
  // bytes so their owner can zero them.
  return {
    key: new TextDecoder().decode(identity.privateKeyPem),
    cert: identity.certChainPem,
    // Sent to clients as acceptable issuers; the SVID check itself is ours.
    ca: identity.trustBundlePem,
  };
}

/**
 * Answers a request node's HTTP parser refused with the JSON error contract
 * and closes the connection (node's own answer has an empty body). A broken
 * or half-answered connection is just dropped.
 */
function refuseUnparsed(err: Error & { code?: string }, socket: Duplex): void {
  // node's own handler makes the same check: an answer already started on
  // this connection cannot be followed by another.
  const answered = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage?.headersSent ?? false;
  if (err.code === "ECONNRESET" || !socket.writable || answered) {
    socket.destroy();
    return;
  }
  const refusal = PARSER_REFUSALS[err.code ?? ""] ?? BAD_REQUEST;
  const body = JSON.stringify({ err: refusal.err });
  const headers = Object.entries(NO_CACHE_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.write(
    `HTTP/1.1 ${refusal.status} ${refusal.reason}\r\ncontent-type: application/json\r\n${headers}` +
      `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
  // Our side closes after the answer; the socket goes when the client closes
  // its side too, or after a short wait for one that never does.
  const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  socket.once("close", () => clearTimeout(timer));
  socket.end();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", ...NO_CACHE_HEADERS });
  res.end(JSON.stringify(body));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
