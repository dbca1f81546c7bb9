/**
 * What the typed clients need from the network: one POST. The mTLS client
 * in `lib/spiffe/mtls_client.ts` provides it; tests may provide another.
 *
 * @module
 */

/** A raw HTTP response. */
export interface TransportResponse {
  /** HTTP status. */
  readonly status: number;
  /** Response headers (lower-case names). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Body bytes. */
  readonly body: Uint8Array;
}

/** Sends one POST request. */
export interface Transport {
  /** POSTs `body` to `url`. */
  post(url: string, body: Uint8Array | string, headers?: Record<string, string>): Promise<TransportResponse>;
}
