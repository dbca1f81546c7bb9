/**
 * Errors the typed clients raise, with messages written for operators.
 *
 * @module
 */
import type { ErrorCode } from "../api/errors.ts";

const MESSAGES: Readonly<Record<ErrorCode, string>> = {
  api_bad_request: "the request was rejected as invalid",
  access_unauthorized: "not authorized: no policy grants this SPIFFE ID the needed permission",
  api_not_found: "not found",
  api_internal_error: "the server hit an internal error (see its logs)",
  state_not_ready: "Nexus is not ready: its root key is not loaded yet (are the Keepers up?)",
  api_payload_too_large: "the request is larger than the server accepts",
  api_rate_limited: "rate limited: try again later",
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
    this.name = "ApiCallError";
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
    this.reason = reason;
  }
}
