/**
 * Bridges `node:http` requests to a fetch-style app (`app.fetch(request, env)`,
 * as Hono apps have), with a request body size cap enforced as the body
 * streams in.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { NO_CACHE_HEADERS } from "../api/no_cache.ts";

/** Anything with a Fetch-API handler, such as a Hono app. */
export interface FetchApp<Env> {
  /** Answers one request; `env` carries per-request context (the peer). */
  fetch(request: Request, env: Env): Response | Promise<Response>;
}

/** Options for {@linkcode createFetchHandler}. */
export interface FetchHandlerOptions {
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Told about app failures (answered with an opaque 500). */
  onError?: (error: Error) => void;
}

/** Handles one node request by calling the fetch app with `env`. */
export type NodeFetchHandler<Env> = (req: IncomingMessage, res: ServerResponse, env: Env) => Promise<void>;

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
export function createFetchHandler<Env>(app: FetchApp<Env>, options: FetchHandlerOptions): NodeFetchHandler<Env> {
  const limit = options.maxBodyBytes;
  if (!(Number.isSafeInteger(limit) && limit >= 0)) throw new RangeError("maxBodyBytes must be a non-negative integer");

  return async (req, res, env) => {
    const declared = Number(req.headers["content-length"] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > limit) {
      refuseTooLarge(req, res);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "https://localhost");
    } catch {
      sendJson(res, 400, { err: "api_bad_request" });
      return;
    }
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const method = req.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD";
    const body = hasBody ? cappedBody(req, limit) : undefined;
    const request = new Request(url, {
      method,
      headers: toHeaders(req),
      body: body?.stream,
      signal: abort.signal,
      // Required by the Fetch spec for a streaming request body.
      ...(body ? { duplex: "half" } : {}),
    } as RequestInit);

    let response: Response;
    try {
      response = await app.fetch(request, env);
    } catch (err) {
      if (body?.overLimit()) return refuseTooLarge(req, res);
      options.onError?.(err instanceof Error ? err : new Error(String(err)));
      if (!res.headersSent) sendJson(res, 500, { err: "api_internal_error" });
      return;
    }
    if (body?.overLimit()) {
      await response.body?.cancel().catch(() => {});
      return refuseTooLarge(req, res);
    }
    await writeResponse(response, res);
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
      req.once("error", (err) => {
        if (settled) return;
        settled = true;
        controller.error(err);
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

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
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
 * Answers 413 and closes the connection: the rest of the body is never read,
 * so the connection cannot carry another request.
 */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.shouldKeepAlive = false;
  res.setHeader("connection", "close");
  sendJson(res, 413, { err: "api_payload_too_large" });
  req.pause();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, NO_CACHE_HEADERS);
  res.end(JSON.stringify(body));
}
