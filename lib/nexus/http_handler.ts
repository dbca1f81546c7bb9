/**
 * Carries Nexus requests from `node:http` to the app and its answers back,
 * directly: the target is cut into path and `?action=`, the body read with
 * the cap as the route asks for it, and the answer written in one piece
 * with its length. No Fetch `Request`, `Headers`, streams or `Response` are
 * made on the way (with Hono they were a third of a secret read's CPU; see
 * docs/ARCHITECTURE.md).
 *
 * The rules for hostile clients are those of the Fetch bridge, from the
 * same code (`lib/spiffe/node_exchange.ts`): a declared length over the cap
 * is refused (413, connection closed) before the app runs; a body over the
 * cap that streams in is refused the same way once it crosses it; a body
 * the app leaves unread is dropped within a per-peer allowance (a caller
 * with a valid SVID: the body cap; anyone else: 64 KiB) and then the
 * connection closed; a client hanging up mid-body is a 499 the app audits.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError } from "../api/errors.ts";
import type { MtlsHandler, Peer } from "../spiffe/mtls_server.ts";
import {
  BodyTooLargeError,
  declaredLength,
  DISCARD_MIN_BYTES,
  readBody,
  refuseTooLarge,
  sendAnswer,
  sendJson,
  targetParts,
} from "../spiffe/node_exchange.ts";
import type { NexusApp, NexusRequest } from "./app.ts";

/** Options of {@linkcode createNexusHttpHandler}. */
export interface NexusHttpOptions {
  /** Largest request body accepted, in bytes. */
  readonly maxBodyBytes: number;
}

/** A `createMtlsServer` handler serving `app`. */
export function createNexusHttpHandler(app: NexusApp, options: NexusHttpOptions): MtlsHandler {
  const limit = options.maxBodyBytes;
  if (!(Number.isSafeInteger(limit) && limit >= 0)) throw new RangeError("maxBodyBytes must be a non-negative integer");
  // A caller with a valid SVID refused before its body mattered (not ready,
  // wrong role) keeps its connection; anyone else gets no more than a small
  // allowance read on its behalf, so a flood of anonymous bodies costs
  // neither memory nor CPU in proportion to what it sends.
  const knownAllowance = Math.max(DISCARD_MIN_BYTES, limit);
  const allowanceOf = (peer: Peer) => peer.ok ? knownAllowance : DISCARD_MIN_BYTES;

  return async (req: IncomingMessage, res: ServerResponse, peer: Peer) => {
    const discardLimit = allowanceOf(peer);
    if (declaredLength(req) > limit) return refuseTooLarge(req, res, discardLimit);
    const target = targetParts(req.url ?? "/", "action");
    if (target === undefined) return sendJson(req, res, discardLimit, 400, { err: "api_bad_request" });
    let overLimit = false;
    const request: NexusRequest = {
      method: req.method ?? "GET",
      path: target.path,
      action: target.param,
      contentType: req.headers["content-type"] ?? "",
      peer,
      body: async (cap) => {
        try {
          return await readBody(req, Math.min(cap, limit));
        } catch (error) {
          if (!(error instanceof BodyTooLargeError)) throw error;
          overLimit = true;
          throw new ApiError("api_payload_too_large", error.message);
        }
      },
    };
    const answer = await app.handle(request);
    // The rest of a body over the cap is not worth reading: the connection ends with this answer.
    if (overLimit) res.shouldKeepAlive = false;
    sendAnswer(req, res, discardLimit, answer.status, answer.headers, answer.body);
  };
}
