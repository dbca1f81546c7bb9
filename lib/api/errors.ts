/**
 * The wire error contract: every failure a client can see is one of these
 * codes with a fixed HTTP status. HTTP status is chosen here and nowhere else.
 *
 * @module
 */

/** Error codes of the SPIKE v1 contract, plus three of ours (409, 413, 429). */
export type ErrorCode =
  | "api_bad_request"
  | "access_unauthorized"
  | "api_not_found"
  | "api_internal_error"
  | "state_not_ready"
  | "api_payload_too_large"
  | "api_rate_limited"
  | "api_conflict";

/** HTTP status for each error code. */
export const STATUS_OF: Readonly<Record<ErrorCode, number>> = Object.freeze({
  api_bad_request: 400,
  access_unauthorized: 401,
  api_not_found: 404,
  api_internal_error: 500,
  state_not_ready: 503,
  api_payload_too_large: 413,
  api_rate_limited: 429,
  // A write whose precondition failed: a check-and-set version that is not
  // the current one, or a move onto a path that exists.
  api_conflict: 409,
});

/**
 * A failure that maps onto the wire contract. `detail` is for operators'
 * logs only and never reaches the client: it must not carry secret data.
 */
export class ApiError extends Error {
  /** The wire code sent as `{"err": code}`. */
  readonly code: ErrorCode;
  /**
   * An operator-facing sentence sent beside the code as `"reason"` **[ours]**
   * (additive; SPIKE clients ignore it). Only for answers to operator routes
   * whose reason carries no data (key versions, rotation state).
   */
  readonly reason?: string;
  /** Creates an API error; `detail` is logged, never sent (unless given again as `reason`). */
  constructor(code: ErrorCode, detail?: string, options: { readonly reason?: string } = {}) {
    super(detail ?? code);
    this.name = "ApiError";
    this.code = code;
    if (options.reason !== undefined) this.reason = options.reason;
  }
  /** HTTP status for this error. */
  get status(): number {
    return STATUS_OF[this.code];
  }
}

/** Shorthand for a 400 with an operator-facing reason. */
export function badRequest(detail: string): ApiError {
  return new ApiError("api_bad_request", detail);
}

/** A 400 whose reason is also sent to the client (`"reason"`, [ours]); the reason must carry no data. */
export function refusal(reason: string): ApiError {
  return new ApiError("api_bad_request", reason, { reason });
}

/** Finds the error code for a status (client side), if it is one of ours. */
export function codeForStatus(status: number): ErrorCode | undefined {
  return (Object.keys(STATUS_OF) as ErrorCode[]).find((code) => STATUS_OF[code] === status);
}
