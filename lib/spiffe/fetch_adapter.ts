/**
 * Bridges `node:http` requests to a fetch-style app (`app.fetch(request, env)`,
 * as Hono apps have), with a request body size cap enforced as the body
 * streams in.
 *
 * Hand-written rather than `@hono/node-server`: that adapter cost 4–11 % more
 * CPU per request on the same server (docs/ARCHITECTURE.md), and the rules
 * below for bodies the app never reads have to live in the bridge either way.
 *
 * A request body the app leaves unread (a request refused before its body
 * mattered) must cost neither memory nor the connection: once the answer is
 * ready, the rest of the body is read and dropped, so the client reads the
 * answer and the kept-alive connection carries its next request. Dropping
 * stops at the body cap (at least {@linkcode DISCARD_MIN_BYTES}; a declared
 * length over the cap is refused with `Connection: close` before anything is
 * read) and at {@linkcode DISCARD_TIMEOUT_MS}: past either, the socket is
 * destroyed. Nothing of a dropped body is kept.
 *
 * A client that hangs up mid-body fails the body stream with
 * {@linkcode ClientClosedError} (its fault, not a server error). A method the
 * Fetch API refuses (TRACE, TRACK, CONNECT) reaches the app as
 * {@linkcode UNSERVED_METHOD}, which no route serves, so the app answers it
 * (400) and audits it like any other bad request.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { ClientClosedError } from "../api/client_closed.ts";
import { NO_CACHE_HEADERS } from "../api/no_cache.ts";

/** Anything with a Fetch-API handler, such as a Hono app. */
export interface FetchApp<Env> {
  /** Answers one request; `env` carries per-request context (the peer). */
  fetch(request: Request, env: Env): Response | Promise<Response>;
}

/** Options for {@linkcode createFetchHandler}. */
export interface FetchHandlerOptions<Env> {
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Told about app failures (answered with an opaque 500). */
  onError?: (error: Error) => void;
  /**
   * How many bytes of a body the app left unread are read and dropped for
   * this request's sender before the connection is closed instead. Default:
   * the larger of {@linkcode DISCARD_MIN_BYTES} and the body cap.
   */
  unreadBodyAllowance?: (env: Env) => number;
}

/** Handles one node request by calling the fetch app with `env`. */
export type NodeFetchHandler<Env> = (req: IncomingMessage, res: ServerResponse, env: Env) => Promise<void>;

/**
 * Least number of bytes of an unread request body read and dropped before
 * the connection is closed instead (the whole allowance of a sender the
 * server does not know, see `serveHono`).
 */
export const DISCARD_MIN_BYTES = 64 * 1024;

/** Longest wait for the unread rest of a body once the answer is written; then the socket is closed. */
export const DISCARD_TIMEOUT_MS = 5_000;

/** The method the app sees for one the Fetch API refuses to represent (TRACE, TRACK, CONNECT). */
export const UNSERVED_METHOD = "UNSUPPORTED";

const ORIGIN = "https://localhost";
const SLASH = 0x2f;
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "application/json",
  ...NO_CACHE_HEADERS,
});

/** Raised inside the body stream when the cap is crossed. */
class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = "BodyTooLargeError";
  }
}

/**
 * Creates a node `(req, res, env)` handler that runs `app.fetch`.
 *
 * A declared `Content-Length` over the cap is refused before the app runs.
 * Otherwise the app gets a streaming body that fails once the cap is
 * crossed, and the client gets `413 {"err":"api_payload_too_large"}` whatever
 * the app made of the failed read; the body is never buffered here.
 */
export function createFetchHandler<Env>(app: FetchApp<Env>, options: FetchHandlerOptions<Env>): NodeFetchHandler<Env> {
  const limit = options.maxBodyBytes;
  if (!(Number.isSafeInteger(limit) && limit >= 0)) throw new RangeError("maxBodyBytes must be a non-negative integer");
  // Dropping a body the app would have accepted costs no more than reading
  // it, and lets the client see the answer instead of a reset connection.
  const defaultAllowance = Math.max(DISCARD_MIN_BYTES, limit);
  const allowance = options.unreadBodyAllowance;

  return async (req, res, env) => {
    const discardLimit = allowance ? allowance(env) : defaultAllowance;
    const declared = Number(req.headers["content-length"] ?? Number.NaN);
    if (declared > limit) return refuseTooLarge(req, res, discardLimit);
    let url: URL;
    try {
      url = requestUrl(req.url ?? "/");
    } catch {
      return sendJson(req, res, discardLimit, 400, { err: "api_bad_request" });
    }
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const method = req.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD" &&
      (declared > 0 || req.headers["transfer-encoding"] !== undefined);
    const body = hasBody ? cappedBody(req, limit) : undefined;
    const init: RequestInit & { duplex?: "half" } = { method, headers: toHeaders(req), signal: abort.signal };
    if (body) {
      init.body = body.stream;
      // Required by the Fetch spec for a streaming request body.
      init.duplex = "half";
    }
    let request: Request;
    try {
      request = new Request(url, init);
    } catch {
      // Only the method can be refused here (URL and headers are checked);
      // the app answers and audits the request under a method it never serves.
      init.method = UNSERVED_METHOD;
      request = new Request(url, init);
    }

    let response: Response;
    try {
      response = await app.fetch(request, env);
    } catch (err) {
      if (body?.overLimit()) return refuseTooLarge(req, res, discardLimit);
      // Nobody is left to answer, and it is not a server failure.
      if (err instanceof ClientClosedError) return void res.destroy();
      options.onError?.(err instanceof Error ? err : new Error(String(err)));
      if (!res.headersSent) sendJson(req, res, discardLimit, 500, { err: "api_internal_error" });
      return;
    }
    if (body?.overLimit()) {
      await response.body?.cancel().catch(() => {});
      return refuseTooLarge(req, res, discardLimit);
    }
    await writeResponse(req, res, discardLimit, response);
  };
}

/**
 * The request target as a URL. Origin form (`/path?query`) is the rule; the
 * authority form of CONNECT and `*` get a leading slash, so their path is
 * still the raw target and never a made-up scheme.
 */
function requestUrl(target: string): URL {
  if (target.charCodeAt(0) !== SLASH && !/^https?:\/\//i.test(target)) target = `/${target}`;
  return new URL(target, ORIGIN);
}

/** A web stream over the node request body that errors past `limit` bytes. */
function cappedBody(req: IncomingMessage, limit: number): { stream: ReadableStream<Uint8Array>; overLimit(): boolean } {
  let size = 0;
  let over = false;
  let settled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Uint8Array) => {
        if (settled) return;
        size += chunk.length;
        if (size > limit) {
          over = true;
          settled = true;
          req.pause();
          controller.error(new BodyTooLargeError(limit));
          return;
        }
        controller.enqueue(new Uint8Array(chunk));
        // Backpressure: stop reading the socket until the app pulls.
        if ((controller.desiredSize ?? 1) <= 0) req.pause();
      });
      req.once("end", () => {
        if (settled) return;
        settled = true;
        controller.close();
      });
      // A request only fails when its connection does: the client hung up
      // (or broke TLS) before the body ended.
      req.once("error", () => {
        if (settled) return;
        settled = true;
        controller.error(new ClientClosedError());
      });
      req.pause();
    },
    pull() {
      req.resume();
    },
    cancel() {
      settled = true;
      req.pause();
    },
  }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength });
  return { stream, overLimit: () => over };
}

function toHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i]!, raw[i + 1]!);
    } catch {
      // A header the Fetch API refuses (bad bytes) is dropped, not fatal.
    }
  }
  return headers;
}

async function writeResponse(
  req: IncomingMessage,
  res: ServerResponse,
  discardLimit: number,
  response: Response,
): Promise<void> {
  if (res.destroyed) {
    // The client is gone (a request it aborted): nothing to write to.
    await response.body?.cancel().catch(() => {});
    return;
  }
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  if (!req.complete) discardRest(req, discardLimit);
  res.writeHead(response.status, headers);
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) {
        await reader.cancel();
        return;
      }
      if (!res.write(value)) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/**
 * Reads and drops what is left of `req`'s body (called before answering a
 * request whose body has not fully arrived): it never reaches the app's
 * stream, and the socket is never left paused with the client's bytes
 * buffered. Past `discardLimit` bytes (only a chunked body gets there: a
 * longer declared one is refused before the app runs) or
 * {@linkcode DISCARD_TIMEOUT_MS}, the socket is destroyed.
 */
function discardRest(req: IncomingMessage, discardLimit: number): void {
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
  // The app's stream (if any) is done with: its listener would queue the rest.
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
function refuseTooLarge(req: IncomingMessage, res: ServerResponse, discardLimit: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.shouldKeepAlive = false;
  sendJson(req, res, discardLimit, 413, { err: "api_payload_too_large" });
}

function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  discardLimit: number,
  status: number,
  body: unknown,
): void {
  if (!req.complete) discardRest(req, discardLimit);
  res.writeHead(status, JSON_HEADERS);
  res.end(JSON.stringify(body));
}
