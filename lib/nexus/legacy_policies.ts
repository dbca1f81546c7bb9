/**
 * The one-time move of a store written before policies were sealed: every
 * plain-text policy row is sealed in place, under the key that has just
 * proved itself against the store's check value, before that key serves a
 * single request. Afterwards the check value is rewritten in the current
 * format, which is what tells every later start that a plain row can only
 * be tampering (see `key_check.ts`).
 *
 * Safe to run twice and from two Nexus at once: each row is replaced only
 * while it is still plain (`Store.replacePolicies`), so exactly one sealing
 * of each row lands, and a crash halfway leaves rows that the next start
 * seals.
 *
 * @module
 */
import type { RandomBytes } from "../crypto/random.ts";
import type { Logger } from "../log/logger.ts";
import type { PlainPolicyRow, PolicyReplacement, Store } from "../store/types.ts";
import { sealPolicy } from "./policy_seal.ts";

/** Rows sealed per store call (one transaction each). */
const BATCH = 256;

/** What sealing the plain rows came to. */
export interface LegacySealing {
  /** Rows this call sealed. */
  readonly sealed: number;
  /** Plain rows whose columns do not make a policy: left as they are (and reported as tampered). */
  readonly unreadable: readonly string[];
}

/**
 * Seals every plain policy row of `store` with `policiesKey` (the policies
 * key of root key version `keyVersion`).
 */
export async function sealLegacyPolicies(
  store: Store,
  policiesKey: CryptoKey,
  keyVersion: number,
  random: RandomBytes,
  log: Logger,
): Promise<LegacySealing> {
  const plain = (await store.listPolicies()).filter((row): row is PlainPolicyRow => row.kind === "plain");
  const unreadable = plain.filter((row) => !row.record).map((row) => row.name);
  const usable = plain.filter((row) => row.record);
  let sealed = 0;
  for (let from = 0; from < usable.length; from += BATCH) {
    const replacements: PolicyReplacement[] = await Promise.all(
      usable.slice(from, from + BATCH).map(async (row) => ({
        expected: row,
        next: await sealPolicy(policiesKey, keyVersion, row.record!, random),
      })),
    );
    sealed += (await store.replacePolicies(replacements)).filter(Boolean).length;
  }
  if (plain.length > 0) {
    log.info("sealed the plain-text policies of a store written before policies were sealed", {
      sealed,
      found: plain.length,
    });
  }
  if (unreadable.length > 0) {
    log.error("plain-text policy rows that do not make a policy were left unsealed (never obeyed)", {
      policies: unreadable.slice(0, 20).join(", "),
      count: unreadable.length,
    });
  }
  return { sealed, unreadable };
}
