/**
 * One `node:http` request and its answer, handled without the Fetch API:
 * the request target cut into path and query, the body read with a cap,
 * the answer written in one piece with its length, and the rules for a
 * body the app leaves unread. The Fetch bridge (`fetch_adapter.ts`) and
 * Nexus's direct API handler (`lib/nexus/http_handler.ts`) both build on
 * these, so a hostile client meets the same bounds on either.
 *
 * A request body the app leaves unread (a request refused before its body
 * mattered) must cost neither memory nor the connection: once the answer is
 * ready, the rest of the body is read and dropped, so the client reads the
 * answer and the kept-alive connection carries its next request. Dropping
 * stops at an allowance (at least {@linkcode DISCARD_MIN_BYTES}; a declared
 * length over the body cap is refused with `Connection: close` before
 * anything is read) and at {@linkcode DISCARD_TIMEOUT_MS}: past either, the
 * socket is destroyed. Nothing of a dropped body is kept.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { ClientClosedError } from "../api/client_closed.ts";
import { NO_CACHE_HEADERS } from "../api/no_cache.ts";

/**
 * Least number of bytes of an unread request body read and dropped before
 * the connection is closed instead (the whole allowance of a sender the
 * server does not know).
 */
export const DISCARD_MIN_BYTES = 64 * 1024;

/** Longest wait for the unread rest of a body once the answer is written; then the socket is closed. */
export const DISCARD_TIMEOUT_MS = 5_000;

/** Headers of every JSON answer (the no-cache contract included). */
export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "application/json",
  ...NO_CACHE_HEADERS,
});

const ORIGIN = "https://localhost";
const SLASH = 0x2f;
/**
 * A target whose path and query `new URL` would leave exactly as they are:
 * unreserved path characters without dot segments, and a query without
 * characters URL parsing escapes. Others take the slow, exact way.
 */
const PLAIN_TARGET = /^(?:\/[A-Za-z0-9\-_~]+(?:\.[A-Za-z0-9\-_~]+)*)*\/?(?:\?[A-Za-z0-9\-._~=&]*)?$/;
const encoder = new TextEncoder();

/** The bytes of a request body went past the cap while it streamed in. */
export class BodyTooLargeError extends Error {
  /** Creates the error; it carries no request data. */
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = "BodyTooLargeError";
  }
}

/**
 * The request target as a URL. Origin form (`/path?query`) is the rule; the
 * authority form of CONNECT and `*` get a leading slash, so their path is
 * still the raw target and never a made-up scheme.
 *
 * @throws {TypeError} when it is no URL even so
 */
export function requestUrl(target: string): URL {
  if (target.charCodeAt(0) !== SLASH && !/^https?:\/\//i.test(target)) target = `/${target}`;
  return new URL(target, ORIGIN);
}

/** The path of a request target and one of its query parameters. */
export interface TargetParts {
  /** The path, percent-decoded where that is safe (as routers see it). */
  readonly path: string;
  /** The value of the query parameter asked for, `""` when absent. */
  readonly param: string;
}

/**
 * Splits `target` into its path (as {@linkcode requestUrl} would normalize
 * it, then percent-decoded except for reserved characters) and the first
 * value of query parameter `name`. Plain targets are cut by hand; others go
 * through `URL`, so both give the same answer.
 *
 * @returns `undefined` when the target is no URL
 */
export function targetParts(target: string, name: string): TargetParts | undefined {
  if (target.charCodeAt(0) === SLASH && PLAIN_TARGET.test(target)) {
    const q = target.indexOf("?");
    if (q < 0) return { path: target, param: "" };
    return { path: target.slice(0, q), param: plainParam(target.slice(q + 1), name) };
  }
  let url: URL;
  try {
    url = requestUrl(target);
  } catch {
    return undefined;
  }
  const path = url.pathname;
  return { path: path.includes("%") ? decodePath(path) : path, param: url.searchParams.get(name) ?? "" };
}

/** The first value of `name` in a query of unreserved characters (nothing to decode). */
function plainParam(query: string, name: string): string {
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    if ((eq < 0 ? pair : pair.slice(0, eq)) === name) return eq < 0 ? "" : pair.slice(eq + 1);
  }
  return "";
}

/**
 * Percent-decodes a path as Hono's router did: escapes of reserved
 * characters (`%2F`) and `%25` stay; a malformed escape is left as it is
 * and the rest decoded.
 */
function decodePath(path: string): string {
  try {
    return decodeKeepingPercent(path);
  } catch {
    return path.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeKeepingPercent(run);
      } catch {
        return run;
      }
    });
  }
}

function decodeKeepingPercent(text: string): string {
  return decodeURI(text.includes("%25") ? text.replace(/%25/g, "%2525") : text);
}

/** The declared `Content-Length`, or `NaN`. */
export function declaredLength(req: IncomingMessage): number {
  return Number(req.headers["content-length"] ?? Number.NaN);
}

/** Whether `req` carries a body (a declared length above zero, or chunks). */
export function hasBody(req: IncomingMessage): boolean {
  const method = req.method;
  if (method === "GET" || method === "HEAD") return false;
  return declaredLength(req) > 0 || req.headers["transfer-encoding"] !== undefined;
}

/**
 * Reads the whole body of `req`, at most `limit` bytes. Rejects with
 * {@linkcode BodyTooLargeError} as soon as more arrives (what came is
 * zeroed and the rest left to {@linkcode discardRest}), and with
 * {@linkcode ClientClosedError} when the client hangs up first.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  if (!hasBody(req)) return Promise.resolve(new Uint8Array(0));
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const wipe = () => {
      for (const chunk of chunks) chunk.fill(0);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onFailure);
      req.off("close", onClose);
    };
    const onData = (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        wipe();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      if (chunks.length === 1) return resolve(chunks[0]!);
      const body = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.length;
      }
      wipe();
      resolve(body);
    };
    // A request only fails when its connection does: the client hung up
    // (or broke TLS) before the body ended.
    const onFailure = () => {
      cleanup();
      wipe();
      reject(new ClientClosedError());
    };
    const onClose = () => {
      if (!req.complete) onFailure();
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onFailure);
    req.once("close", onClose);
  });
}

/**
 * Writes an answer in one piece with its `Content-Length` (one TLS write,
 * no chunked framing). When the body has not all arrived, what is left is
 * dropped within `discardLimit` (see {@linkcode discardRest}). Nothing is
 * written to a connection already gone.
 */
export function sendAnswer(
  req: IncomingMessage,
  res: ServerResponse,
  discardLimit: number,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: string | Uint8Array,
): void {
  if (res.destroyed) return;
  if (!req.complete) discardRest(req, discardLimit);
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  res.writeHead(status, { ...headers, "content-length": String(bytes.length) });
  res.end(bytes);
}

/** {@linkcode sendAnswer} of `JSON.stringify(body)` with the JSON headers. */
export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  discardLimit: number,
  status: number,
  body: unknown,
): void {
  sendAnswer(req, res, discardLimit, status, JSON_HEADERS, JSON.stringify(body));
}

/**
 * Reads and drops what is left of `req`'s body (called before answering a
 * request whose body has not fully arrived): it never reaches the app, and
 * the socket is never left paused with the client's bytes buffered. Past
 * `discardLimit` bytes (only a chunked body gets there: a longer declared
 * one is refused before the app runs) or {@linkcode DISCARD_TIMEOUT_MS},
 * the socket is destroyed.
 */
export function discardRest(req: IncomingMessage, discardLimit: number): void {
  const socket = req.socket;
  let dropped = 0;
  const timer = setTimeout(() => socket.destroy(), DISCARD_TIMEOUT_MS);
  const done = () => {
    clearTimeout(timer);
    req.off("end", done);
    socket.off("close", done);
  };
  req.once("end", done);
  socket.once("close", done);
  // Whoever read the body before is done with it: its listener would queue the rest.
  req.removeAllListeners("data");
  req.on("data", (chunk: Uint8Array) => {
    dropped += chunk.length;
    if (dropped > discardLimit) socket.destroy();
  });
  req.resume();
}

/**
 * Answers 413 and closes the connection once the answer is written (what
 * arrives until then is dropped, within the usual bounds): the rest of the
 * body is not worth reading, so the connection cannot carry another request.
 */
export function refuseTooLarge(req: IncomingMessage, res: ServerResponse, discardLimit: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.shouldKeepAlive = false;
  sendJson(req, res, discardLimit, 413, { err: "api_payload_too_large" });
}
