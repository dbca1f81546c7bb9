/**
 * Argument checks shared by every backend, so that a programming error in a
 * caller fails the same way everywhere instead of storing a record one
 * backend would reject and another would accept. Messages name the field,
 * never its content.
 *
 * @module
 */
import { storableText } from "./storable_text.ts";
import type {
  KeyStateChange,
  PathPageQuery,
  PolicyRecord,
  PolicyReplacement,
  SealedPolicy,
  SecretRecord,
  SecretWrite,
} from "./types.ts";

function fail(what: string): never {
  throw new TypeError(`store: invalid ${what}`);
}

function checkCount(value: unknown, what: string, min: number): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) fail(what);
}

function checkDate(value: unknown, what: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) fail(what);
}

function checkKey(value: unknown, what: string): void {
  if (typeof value !== "string" || value.length === 0 || !storableText(value)) fail(what);
}

/** Throws a `TypeError` unless `writeSecret`'s arguments are well formed. */
export function checkSecretWrite(path: string, expectedRevision: number, next: SecretRecord): void {
  checkKey(path, "secret path");
  checkCount(expectedRevision, "expected revision", 0);
  checkCount(next.currentVersion, "current version", 0);
  checkCount(next.oldestVersion, "oldest version", 0);
  checkCount(next.maxVersions, "max versions", 0);
  checkDate(next.createdTime, "created time");
  checkDate(next.updatedTime, "updated time");
  if (next.customMetadata !== undefined) {
    if (!(next.customMetadata?.sealed instanceof Uint8Array)) fail("custom metadata");
    checkCount(next.customMetadata.keyVersion, "custom metadata key version", 1);
  }
  if (next.expiresAt !== undefined) checkDate(next.expiresAt, "expiry time");
  if (!(next.versions instanceof Map)) fail("versions");
  for (const [key, v] of next.versions) {
    checkCount(key, "version number", 1);
    if (v.version !== key) fail("version number (key and entry differ)");
    checkDate(v.createdTime, "version created time");
    if (v.deletedTime !== null) checkDate(v.deletedTime, "version deleted time");
    if (!(v.sealed instanceof Uint8Array)) fail("sealed value");
    checkCount(v.keyVersion, "version key version", 1);
    if (v.expiresAt !== undefined) checkDate(v.expiresAt, "version expiry time");
  }
}

/** Throws a `TypeError` unless `deleteSecret`'s arguments are well formed. */
export function checkSecretDelete(path: string, expectedRevision: number): void {
  checkKey(path, "secret path");
  checkCount(expectedRevision, "expected revision", 1);
}

/** Throws a `TypeError` unless `moveSecret`'s arguments are well formed. */
export function checkSecretMove(
  from: string,
  fromRevision: number,
  to: string,
  toRevision: number,
  next: SecretRecord,
) {
  checkSecretDelete(from, fromRevision);
  checkSecretWrite(to, toRevision, next);
  if (from === to) fail("move (source and destination are the same path)");
}

/** Throws a `TypeError` unless `listExpired`'s arguments are well formed. */
export function checkListExpired(now: Date, limit: number): void {
  checkDate(now, "time");
  checkCount(limit, "limit", 0);
}

/** Throws a `TypeError` unless a page query is well formed (empty prefix and cursor allowed). */
export function checkPathPage(query: PathPageQuery): void {
  for (const [text, what] of [[query.prefix, "prefix"], [query.after, "cursor"]] as const) {
    if (text !== undefined && (typeof text !== "string" || !storableText(text))) fail(what);
  }
  checkCount(query.limit, "limit", 0);
}

/** Throws a `TypeError` unless `sealedUnder` is absent or a key version. */
export function checkSealedUnder(sealedUnder: number | undefined): void {
  if (sealedUnder !== undefined) checkCount(sealedUnder, "sealed-under key version", 1);
}

/** Throws a `TypeError` unless every write of `writeSecrets` is well formed. */
export function checkSecretWrites(writes: readonly SecretWrite[]): void {
  if (!Array.isArray(writes)) fail("secret writes");
  for (const write of writes) {
    checkSecretWrite(write?.path, write.expectedRevision, write.next);
    checkSealedUnder(write.sealedUnder);
  }
}

/** Throws a `TypeError` unless the scan arguments are well formed. */
export function checkScan(version: number, after: string, limit: number): void {
  checkCount(version, "key version", 1);
  if (typeof after !== "string") fail("scan cursor");
  checkCount(limit, "scan limit", 1);
}

/** Throws a `TypeError` unless `next` is a consistent key state. */
export function checkKeyStateChange(expectedRevision: number, next: KeyStateChange): void {
  checkCount(expectedRevision, "expected key state revision", 1);
  checkCount(next.currentVersion, "current key version", 1);
  checkCount(next.minWriteVersion, "minimum write key version", 1);
  checkCount(next.toReseal, "records to re-seal", 0);
  if (!["idle", "preparing", "sealing"].includes(next.phase)) fail("key phase");
  const idle = next.phase === "idle";
  if (idle !== (next.targetVersion === null) || idle !== (next.targetCheck === null)) fail("rotation target");
  if (!idle) {
    checkCount(next.targetVersion, "target key version", 1);
    if (!(next.targetCheck instanceof Uint8Array)) fail("target key check");
  }
  if (next.leaseOwner !== null && (typeof next.leaseOwner !== "string" || !storableText(next.leaseOwner))) {
    fail("lease owner");
  }
  if (next.leaseUntil !== null) checkDate(next.leaseUntil, "lease end");
  if (next.startedAt !== null) checkDate(next.startedAt, "rotation start");
}

/** Throws a `TypeError` unless `policy` is a well-formed sealed policy row. */
export function checkSealedPolicy(policy: SealedPolicy): void {
  checkKey(policy?.name, "policy name");
  checkCount(policy.keyVersion, "policy key version", 1);
  if (!(policy.sealed instanceof Uint8Array)) fail("sealed policy");
}

/** Throws a `TypeError` unless every replacement is well formed and names one row. */
export function checkPolicyReplacements(replacements: readonly PolicyReplacement[]): void {
  if (!Array.isArray(replacements)) fail("policy replacements");
  for (const { expected, next } of replacements) {
    if (next !== null) {
      checkSealedPolicy(next);
      if (expected?.name !== next.name) fail("policy replacement (names differ)");
    }
    if (expected?.kind === "sealed") checkSealedPolicy(expected);
    else if (expected.kind !== "plain") fail("expected policy row");
  }
}

/** Throws a `TypeError` unless `policy` is well formed (plain rows: tests that build an older store). */
export function checkPolicy(policy: PolicyRecord): void {
  checkKey(policy.name, "policy name");
  if (typeof policy.spiffeIdPattern !== "string" || !storableText(policy.spiffeIdPattern)) {
    fail("policy SPIFFE ID pattern");
  }
  if (typeof policy.pathPattern !== "string" || !storableText(policy.pathPattern)) fail("policy path pattern");
  if (!Array.isArray(policy.permissions) || !policy.permissions.every((p) => typeof p === "string")) {
    fail("policy permissions");
  }
  checkDate(policy.createdAt, "policy created time");
  checkDate(policy.updatedAt, "policy updated time");
}

/** Throws a `TypeError` unless `key` is a usable meta key. */
export function checkMetaKey(key: string): void {
  checkKey(key, "meta key");
}

/** Throws a `TypeError` unless `value` is a byte array. */
export function checkMetaValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) fail("meta value");
}
