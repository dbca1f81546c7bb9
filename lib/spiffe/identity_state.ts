/**
 * The bookkeeping every rotating {@linkcode IdentitySource} shares: the
 * latest identity, the ready promise with its deadline, and the listeners.
 * Sources only decide *when* a new identity exists and call `publish`.
 *
 * Every identity handed out carries its own copy of the key bytes, so a
 * holder that zeroes its copy after building a TLS context (as
 * `identity.ts` invites) cannot blank the key for the next caller.
 *
 * @module
 */

import type { IdentitySource, X509Identity } from "./identity.ts";
import { IdentitySourceError, sameIdentity } from "./identity_check.ts";
import type { Logger } from "../log/logger.ts";

/** The source-facing side of {@linkcode createIdentityState}. */
export interface IdentityState extends Omit<IdentitySource, "close"> {
  /**
   * Makes `identity` current (taking ownership of its key bytes). Listeners
   * are called only when it differs from the current one; returns whether it
   * did.
   */
  publish(identity: X509Identity): boolean;
  /** Rejects a pending ready() now (no effect once an identity exists). */
  fail(error: IdentitySourceError): void;
  /** True once an identity has been published. */
  readonly hasIdentity: boolean;
  /** True once {@linkcode IdentityState.close} has run. */
  readonly closed: boolean;
  /** Rejects a pending ready(), drops listeners, zeroes the held key. */
  close(): void;
}

/** Options for {@linkcode createIdentityState}. */
export interface IdentityStateOptions {
  /** How long ready() waits for the first identity. */
  readonly readyTimeoutMs: number;
  /** The error ready() rejects with at the deadline (say what went wrong last). */
  readonly timeoutError: () => IdentitySourceError;
  /** Where listener failures go. */
  readonly log: Logger;
  /** Names the source in errors, e.g. `SVID files in /run/svid`. */
  readonly name: string;
}

/** Creates the shared state of an identity source and starts its ready deadline. */
export function createIdentityState(options: IdentityStateOptions): IdentityState {
  let held: X509Identity | undefined;
  let closed = false;
  const listeners = new Set<(identity: X509Identity) => void>();

  let resolveReady!: (identity: X509Identity) => void;
  let rejectReady!: (error: Error) => void;
  const readyPromise = new Promise<X509Identity>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  // Nobody may ever call ready(); a rejection must not crash the process.
  readyPromise.catch(() => {});
  let deadline: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
    deadline = undefined;
    if (held === undefined) rejectReady(options.timeoutError());
  }, options.readyTimeoutMs);

  const clearDeadline = () => {
    if (deadline !== undefined) clearTimeout(deadline);
    deadline = undefined;
  };

  return {
    get hasIdentity() {
      return held !== undefined;
    },
    get closed() {
      return closed;
    },
    ready() {
      if (closed) {
        return Promise.reject(new IdentitySourceError("closed", `${options.name}: identity source is closed`));
      }
      if (held !== undefined) return Promise.resolve(handOut(held));
      // The latest identity, not the first: a rotation may have happened since.
      return readyPromise.then(() => handOut(held!));
    },
    current() {
      if (closed) throw new IdentitySourceError("closed", `${options.name}: identity source is closed`);
      if (held === undefined) throw new IdentitySourceError("not_ready", `${options.name}: no identity yet`);
      return handOut(held);
    },
    onChange(listener) {
      // Wrapped so the same function can subscribe twice and unsubscribe once each.
      const entry = (identity: X509Identity) => listener(identity);
      if (!closed) listeners.add(entry);
      return () => void listeners.delete(entry);
    },
    publish(identity) {
      if (closed) {
        identity.privateKeyPem.fill(0);
        return false;
      }
      const previous = held;
      if (previous !== undefined && sameIdentity(previous, identity)) {
        identity.privateKeyPem.fill(0);
        return false;
      }
      held = identity;
      // Hand-outs are copies, so nobody else can still be reading these bytes.
      previous?.privateKeyPem.fill(0);
      if (previous === undefined) {
        clearDeadline();
        resolveReady(identity);
        return true;
      }
      for (const listener of [...listeners]) {
        try {
          listener(handOut(identity));
        } catch (e) {
          options.log.error("identity change listener failed", {
            source: options.name,
            error: e instanceof Error ? e.message : String(e),
          });
        }
      }
      return true;
    },
    fail(error) {
      if (held !== undefined || closed) return;
      clearDeadline();
      rejectReady(error);
    },
    close() {
      if (closed) return;
      closed = true;
      clearDeadline();
      listeners.clear();
      if (held === undefined) {
        rejectReady(new IdentitySourceError("closed", `${options.name}: closed before an identity arrived`));
      }
      held?.privateKeyPem.fill(0);
    },
  };
}

function handOut(identity: X509Identity): X509Identity {
  return Object.freeze({ ...identity, privateKeyPem: identity.privateKeyPem.slice() });
}
