/**
 * Errors the typed clients raise, with messages written for operators.
 *
 * Every answer other than 200 is an {@linkcode ApiCallError}; the statuses a
 * caller reacts to have their own subclass, so `instanceof NotFoundError`
 * works as well as `error.status === 404` or `error.code === "api_not_found"`.
 *
 * @module
 */
import type { ErrorCode } from "../api/errors.ts";

const MESSAGES: Readonly<Record<ErrorCode, string>> = {
  api_bad_request: "the request was rejected as invalid",
  access_unauthorized: "not authorized: no policy grants this SPIFFE ID the needed permission",
  api_not_found: "not found",
  api_internal_error: "the server hit an internal error (see its logs)",
  state_not_ready:
    "Nexus is not ready: its root key is not loaded yet (are the Keepers up?), or it cannot write its audit trail " +
    "(see its logs)",
  api_payload_too_large: "the request is larger than the server accepts",
  api_rate_limited: "rate limited: try again later",
  api_conflict: "conflict: the secret is not in the state the request expected " +
    "(its current version differs from the check-and-set version, or the destination exists)",
};

/** A server answer other than 200. */
export class ApiCallError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The `err` code, when the body carried one. */
  readonly code: ErrorCode | undefined;
  /** Seconds the server asked to wait (`Retry-After` of a 429), when it said. */
  readonly retryAfterSeconds: number | undefined;
  /** The server's operator-facing `reason` [ours], when it sent one. */
  readonly reason: string | undefined;

  /**
   * Creates the error from a status, an optional wire code, an optional
   * `Retry-After` and an optional reason (which then is the message).
   */
  constructor(status: number, code: ErrorCode | undefined, retryAfterSeconds?: number, reason?: string) {
    super(reason ?? (code ? MESSAGES[code] ?? code : `unexpected HTTP status ${status}`));
    // The subclass's own name, so logs and stack traces say which one it is.
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
    this.reason = reason;
  }
}

/** 400: the request was malformed (bad path, key name, pattern, …); repeating it cannot help. */
export class BadRequestError extends ApiCallError {}

/** 401: no policy grants this workload's SPIFFE ID what the call needs. */
export class UnauthorizedError extends ApiCallError {}

/** 404: no such secret, version, key or policy (or the version is deleted). */
export class NotFoundError extends ApiCallError {}

/**
 * 409: the write's precondition failed — the secret's current version is not
 * the check-and-set version given, or a move's destination exists. Re-read
 * and decide again.
 */
export class ConflictError extends ApiCallError {}

/** 413: the request body is larger than Nexus accepts. */
export class PayloadTooLargeError extends ApiCallError {}

/** 429: rate limited; `retryAfterSeconds` says when to come back. */
export class RateLimitedError extends ApiCallError {}

/** 500: Nexus failed (its logs say why; the answer never does). */
export class InternalServerError extends ApiCallError {}

/** 503: Nexus is not ready (its root key is not loaded yet), or no Nexus is behind the load balancer. */
export class NotReadyError extends ApiCallError {}

const CLASS_OF_STATUS: ReadonlyMap<number, typeof ApiCallError> = new Map<number, typeof ApiCallError>([
  [400, BadRequestError],
  [401, UnauthorizedError],
  [404, NotFoundError],
  [409, ConflictError],
  [413, PayloadTooLargeError],
  [429, RateLimitedError],
  [500, InternalServerError],
  [503, NotReadyError],
]);

/**
 * A put carried one of our write extensions (`cas`, an expiry) to a Nexus
 * that does not honour them: SPIKE's ignores fields it does not know, so the
 * write would land unconditionally and never expire. It was not sent.
 */
export class UnsupportedExtensionError extends BadRequestError {
  /** `feature`: what the put asked for; `answer`: what `GET /health` answered. */
  constructor(feature: string, answer: string) {
    super(400, "api_bad_request");
    this.message = `this Nexus does not support ${feature}: it answered GET /health with ${answer}, so it is ` +
      "not ours (SPIKE's Nexus ignores these fields and would write unconditionally, without expiry); " +
      "nothing was written";
  }
}

/**
 * The error for an answer with `status`: the subclass for that status, or a
 * plain {@linkcode ApiCallError} for one without (a proxy's 502, say).
 */
export function apiCallError(
  status: number,
  code: ErrorCode | undefined,
  retryAfterSeconds?: number,
  reason?: string,
): ApiCallError {
  const Class = CLASS_OF_STATUS.get(status) ?? ApiCallError;
  return new Class(status, code, retryAfterSeconds, reason);
}
