/**
 * Verdicts on client SVIDs by the leaf certificate's SHA-256, so a new
 * connection of a known client costs a hash and a look-up instead of the
 * detailed peer-certificate object, the X.509 parses and the chain check
 * (~100–250 µs per handshake, docs/BENCHMARKS.md).
 *
 * Keyed by the leaf alone, which is sound because only successes are kept:
 * a leaf that once chained to the trust bundle was signed by that path, and
 * the verdict carries the path's validity window (the earliest `notAfter`
 * and latest `notBefore` of leaf, intermediates and anchor), which is
 * checked against the clock on every hit. A verdict belongs to one trust
 * bundle: one looked up under another (after a bundle rotation) is a miss.
 * Failures are never kept (a leaf may fail without its intermediates and
 * pass with them). The map is bounded and least recently used goes first.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { TrustBundle, ValidatedSvid } from "./svid.ts";

/** Verdicts kept by default. */
export const DEFAULT_PEER_VERDICTS = 1024;

/** A leaf that passed, and under which bundle and ID check. */
interface Entry {
  readonly bundle: TrustBundle;
  readonly svid: ValidatedSvid;
  /** What the server's ID predicate said about the SVID's SPIFFE ID. */
  readonly allowed: boolean;
}

/** What a hit gives: the SVID and whether its ID is allowed. */
export interface KnownPeer {
  /** The validated SVID (its window already checked against `now`). */
  readonly svid: ValidatedSvid;
  /** Whether the server's ID predicate allowed its SPIFFE ID. */
  readonly allowed: boolean;
}

/** A bounded LRU of verdicts by leaf fingerprint. */
export class PeerVerdicts {
  readonly #limit: number;
  readonly #entries = new Map<string, Entry>();

  /** Keeps at most `limit` verdicts. */
  constructor(limit: number = DEFAULT_PEER_VERDICTS) {
    if (!(Number.isSafeInteger(limit) && limit >= 1)) throw new RangeError("limit must be a positive integer");
    this.#limit = limit;
  }

  /** How many verdicts are kept. */
  get size(): number {
    return this.#entries.size;
  }

  /** The key of a leaf certificate: its SHA-256 (hex). */
  static fingerprint(leafDer: Uint8Array): string {
    return createHash("sha256").update(leafDer).digest("hex");
  }

  /**
   * The verdict on `fingerprint` under `bundle`, if one is kept and its
   * validity window holds at `now`; `undefined` otherwise (then validate).
   */
  lookup(fingerprint: string, bundle: TrustBundle, now: number): KnownPeer | undefined {
    const entry = this.#entries.get(fingerprint);
    if (entry === undefined) return undefined;
    if (entry.bundle !== bundle || now < entry.svid.notBefore.getTime() || now > entry.svid.notAfter.getTime()) {
      // Stale for good: another bundle, or outside its window (a window does not come back).
      this.#entries.delete(fingerprint);
      return undefined;
    }
    // Most recently used goes last.
    this.#entries.delete(fingerprint);
    this.#entries.set(fingerprint, entry);
    return entry;
  }

  /** Keeps a successful validation under `bundle`. */
  remember(fingerprint: string, bundle: TrustBundle, svid: ValidatedSvid, allowed: boolean): void {
    this.#entries.delete(fingerprint);
    if (this.#entries.size >= this.#limit) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(fingerprint, { bundle, svid, allowed });
  }

  /** Forgets everything (a new trust bundle). */
  clear(): void {
    this.#entries.clear();
  }
}
