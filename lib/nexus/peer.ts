/**
 * How the TLS layer tells the app who is on the other end.
 *
 * @module
 */

/** The outcome of authenticating the client's SVID for one request. */
export type PeerResult =
  | { readonly ok: true; readonly spiffeId: string }
  | { readonly ok: false; readonly reason: string };

/** Hono bindings of the Keeper app (Nexus takes the peer in its `NexusRequest`). */
export interface PeerBindings {
  /** Set by the mTLS server adapter (or a test). */
  readonly peer: PeerResult;
}
