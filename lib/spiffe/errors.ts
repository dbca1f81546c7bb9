/**
 * Errors raised by the SPIFFE layer. Each carries a machine-readable
 * `reason` so callers (and tests) can tell failures apart without parsing
 * messages. Messages name certificates and IDs, never key material.
 *
 * @module
 */

/** A string is not a valid SPIFFE ID. */
export class SpiffeIdError extends Error {
  /** The rejected input, truncated so a huge value cannot flood a log. */
  readonly input: string;
  /** Creates the error; `reason` says which rule the input broke. */
  constructor(input: string, reason: string) {
    const shown = input.length > 120 ? `${input.slice(0, 120)}…` : input;
    super(`invalid SPIFFE ID ${JSON.stringify(shown)}: ${reason}`);
    this.name = "SpiffeIdError";
    this.input = shown;
  }
}

/** Why a peer's X.509-SVID was rejected. */
export type SvidErrorReason =
  | "no_certificate"
  | "malformed_certificate"
  | "uri_san_count"
  | "invalid_spiffe_id"
  | "leaf_is_ca"
  | "bad_key_usage"
  | "not_yet_valid"
  | "expired"
  | "untrusted_chain"
  | "bad_signature";

/** A peer's X.509-SVID failed validation. */
export class SvidError extends Error {
  /** Which check failed. */
  readonly reason: SvidErrorReason;
  /** Creates the error with a reason code and a human-readable message. */
  constructor(reason: SvidErrorReason, message: string) {
    super(message);
    this.name = "SvidError";
    this.reason = reason;
  }
}

/** Why an mTLS client call failed. */
export type MtlsErrorReason =
  | "connect_failed"
  | "timeout"
  | "server_svid_invalid"
  | "server_id_not_allowed"
  | "protocol"
  | "closed";

/** An mTLS client call failed before a response arrived. */
export class MtlsError extends Error {
  /** Which stage failed. */
  readonly reason: MtlsErrorReason;
  /** Creates the error; `cause` keeps the underlying error for logs. */
  constructor(reason: MtlsErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MtlsError";
    this.reason = reason;
  }
}
