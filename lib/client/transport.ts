/**
 * What the typed clients need from the network: a POST, and a GET where
 * it can. The mTLS client
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

/** Sends one POST request (and, where it can, a GET). */
export interface Transport {
  /** POSTs `body` to `url`. */
  post(url: string, body: Uint8Array | string, headers?: Record<string, string>): Promise<TransportResponse>;
  /** Sends any method (the mTLS client can); used to ask `GET /health` whether Nexus is ours. */
  request?(method: string, url: string): Promise<TransportResponse>;
}
