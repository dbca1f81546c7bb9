/**
 * Bridges `node:http` requests to a fetch-style app (`app.fetch(request, env)`,
 * as Hono apps have), with a request body size cap enforced as the body
 * streams in.
 *
 * Hand-written rather than `@hono/node-server`: that adapter cost 4–11 % more
 * CPU per request on the same server (docs/ARCHITECTURE.md), and the rules
 * below for bodies the app never reads have to live in the bridge either way.
 *
 * A request body the app leaves unread is read and dropped within bounds
 * once the answer is ready (`node_exchange.ts`); a declared length over the
 * cap is refused with `Connection: close` before anything is read.
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
import {
  BodyTooLargeError,
  declaredLength,
  DISCARD_MIN_BYTES,
  discardRest,
  hasBody,
  refuseTooLarge,
  requestUrl,
  sendJson,
} from "./node_exchange.ts";

export { DISCARD_MIN_BYTES, DISCARD_TIMEOUT_MS } from "./node_exchange.ts";

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

/** The method the app sees for one the Fetch API refuses to represent (TRACE, TRACK, CONNECT). */
export const UNSERVED_METHOD = "UNSUPPORTED";

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
    if (declaredLength(req) > limit) return refuseTooLarge(req, res, discardLimit);
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
    const body = hasBody(req) ? cappedBody(req, limit) : undefined;
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
