/**
 * SPIKE's secret-version rules as pure functions: no IO, the clock passed
 * in. Nexus reads a `SecretRecord`, computes the next one here and swaps it
 * in with the store's compare-and-swap; the store never interprets versions.
 *
 * The rules, and where they knowingly differ from SPIKE 0.x (`base/secret.go`):
 *
 * - Put: versions start at 1. The new version is one above the highest
 *   version number still kept (which is `current + 1` whenever the current
 *   version is the highest, and `max + 1` when current is 0, as in SPIKE).
 *   SPIKE uses `current + 1` even when higher, soft-deleted versions exist,
 *   overwriting one of them; here a number is never reused. At most
 *   `maxVersions` versions are kept: the lowest numbers are dropped for good.
 *   `maxVersions` is the configured value at each put (SPIKE keeps the value
 *   from the secret's first put).
 * - Delete is soft: it sets `deletedTime` (an existing `deletedTime` is
 *   kept; SPIKE overwrites it). `[]` or `0` mean the current version.
 *   Versions that do not exist are ignored. The current version becomes the
 *   highest undeleted one, or 0.
 * - Undelete clears `deletedTime`, as SPIKE does: `0` names the current
 *   version (what SPIKE's pilot sends for a plain undelete) and is skipped
 *   when there is none; `[]` names the current version, or the highest
 *   deleted one when every version is deleted. Versions that do not exist or
 *   are not deleted are skipped; when nothing at all is restored the answer
 *   is "not found" (`undefined` here, a 404 upstream). The current version is
 *   never deleted, so `[0]`, and `[]` on a path with a live version, always
 *   end there.
 * - `oldestVersion` follows SPIKE exactly: 1 for a new secret; on a put it
 *   changes only when versions are pruned (to the lowest version kept); after
 *   a delete or undelete it is the lowest undeleted version, or 0.
 * - `updatedTime` changes on every put and whenever the current version
 *   changes.
 * - Metadata of the current version (`version` 0 or absent) answers for any
 *   path that exists, even one whose versions are all deleted (then
 *   `currentVersion` is 0), so it agrees with the secret list, which lists
 *   every path. SPIKE answers 404 there while still listing the path.
 * - Destroy [ours] empties a version's sealed bytes for good and marks it
 *   deleted (keeping an earlier `deletedTime`); current and oldest move as
 *   after a delete. The entry stays, so its number is never reused and
 *   metadata shows it (`destroyed: true`); undelete skips it.
 * - Expiry [ours]: a secret (`expiresAt`) or a version may expire. From its
 *   expiry on, an expired secret reads as absent (the secret service treats
 *   it so) and an expired version as deleted: reads of it miss, the current
 *   version falls back to the highest readable one (as after a delete), and
 *   undelete cannot restore it. The expiry sweep then destroys expired
 *   versions (`expireVersions`) and removes expired secrets, so what reads
 *   see before and after the sweep is the same.
 * - A call that changes nothing returns the very record it was given, so a
 *   caller can skip the write.
 *
 * @module
 */
import type { SecretRecord, SecretVersion } from "../store/types.ts";

/** One version as the metadata response shows it. */
export interface VersionInfoView {
  /** RFC 3339. */
  readonly createdTime: string;
  /** Version number. */
  readonly version: number;
  /** RFC 3339, or `null` while not deleted. */
  readonly deletedTime: string | null;
  /** `true` when the version's values are destroyed for good [ours]; absent otherwise, as in SPIKE's answer. */
  readonly destroyed?: true;
  /** RFC 3339: when this version expires [ours]; absent when it does not. */
  readonly expiresAt?: string;
}

/** The `/v1/store/secrets/metadata?action=get` response body (without `err`). */
export interface MetadataView {
  /** Every kept version, keyed by its number as a string. */
  readonly versions: Readonly<Record<string, VersionInfoView>>;
  /** Path-level metadata. */
  readonly metadata: {
    readonly currentVersion: number;
    readonly oldestVersion: number;
    /** RFC 3339. */
    readonly createdTime: string;
    /** RFC 3339. */
    readonly updatedTime: string;
    readonly maxVersions: number;
    /** The secret's custom metadata, opened [ours]; absent when it has none (Nexus adds it, not this module). */
    readonly customMetadata?: Readonly<Record<string, string>>;
    /** RFC 3339: when the whole secret expires [ours]; absent when it does not. */
    readonly expiresAt?: string;
  };
}

function highestVersion(record: SecretRecord): number {
  let highest = record.currentVersion;
  for (const n of record.versions.keys()) if (n > highest) highest = n;
  return highest;
}

/** The highest version not deleted (with `now`: nor expired), or 0. */
function highestLive(versions: ReadonlyMap<number, SecretVersion>, now?: Date): number {
  let highest = 0;
  for (const [n, v] of versions) if (readable(v, now) && n > highest) highest = n;
  return highest;
}

function lowestLive(versions: ReadonlyMap<number, SecretVersion>): number {
  let lowest = 0;
  for (const [n, v] of versions) if (v.deletedTime === null && (lowest === 0 || n < lowest)) lowest = n;
  return lowest;
}

/** The highest deleted version that can still be restored (not destroyed, not expired), or 0. */
function highestDeleted(versions: ReadonlyMap<number, SecretVersion>, now: Date): number {
  let highest = 0;
  for (const [n, v] of versions) if (restorable(v, now) && n > highest) highest = n;
  return highest;
}

/** Whether undelete can bring `v` back: deleted, not destroyed, not expired. */
function restorable(v: SecretVersion | undefined, now: Date): v is SecretVersion {
  return v !== undefined && v.deletedTime !== null && !isDestroyed(v) && !hasPassed(v.expiresAt, now);
}

/** Whether the time `at` is set and at or before `now` (expiry is inclusive) [ours]. */
export function hasPassed(at: Date | undefined, now: Date | undefined): boolean {
  return at !== undefined && now !== undefined && at.getTime() <= now.getTime();
}

/** Whether the whole secret has expired at `now` [ours]: it then reads as absent. */
export function secretExpired(record: SecretRecord, now: Date): boolean {
  return hasPassed(record.expiresAt, now);
}

/** Whether `v` can be read at `now`: not deleted (destroyed versions are deleted too) and not expired. */
function readable(v: SecretVersion, now: Date | undefined): boolean {
  return v.deletedTime === null && !hasPassed(v.expiresAt, now);
}

/** Whether `version`'s values are destroyed (its sealed bytes are gone) [ours]. */
export function isDestroyed(version: SecretVersion): boolean {
  return version.sealed.length === 0;
}

/**
 * The path's current version: the highest undeleted one, or 0 when it has
 * none or does not exist. With `now`, expired versions count as deleted
 * [ours]: when the stored current version has expired, the highest readable
 * version below it. Check-and-set compares against this number, and
 * metadata shows it.
 */
export function currentVersionOf(record: SecretRecord | undefined, now?: Date): number {
  if (!record) return 0;
  const current = record.versions.get(record.currentVersion);
  if (!current || readable(current, now)) return record.currentVersion;
  return highestLive(record.versions, now);
}

/**
 * The number the next put of `record` will take (1 for a new path). Lets a
 * caller seal the values (the number is in the associated data) before
 * calling `nextVersionForPut`, e.g. when sealing is async.
 */
export function nextVersionNumber(record: SecretRecord | undefined): number {
  return (record ? highestVersion(record) : 0) + 1;
}

/**
 * The record after a put. `sealedFor(version)` seals the new values for the
 * version number chosen here (it is called exactly once), so the caller can
 * bind the number into the ciphertext's associated data; `expiry` sets the
 * new version's and the secret's expiry [ours]; `keyVersion` is the root key
 * version it sealed under (default 1).
 *
 * @throws {RangeError} when `maxVersions` is not a positive integer.
 */
export function nextVersionForPut(
  record: SecretRecord | undefined,
  now: Date,
  maxVersions: number,
  sealedFor: (version: number) => Uint8Array,
  expiry: PutExpiry = {},
  keyVersion = 1,
): SecretRecord {
  if (!Number.isSafeInteger(maxVersions) || maxVersions < 1) {
    throw new RangeError("maxVersions must be a positive integer");
  }
  const version = nextVersionNumber(record);
  const versions = new Map(record?.versions);
  versions.set(version, {
    version,
    createdTime: now,
    deletedTime: null,
    sealed: sealedFor(version),
    keyVersion,
    ...(expiry.versionExpiresAt === undefined ? {} : { expiresAt: expiry.versionExpiresAt }),
  });
  let oldestVersion = record?.oldestVersion ?? 1;
  if (versions.size > maxVersions) {
    const ascending = [...versions.keys()].sort((a, b) => a - b);
    const drop = ascending.length - maxVersions;
    for (const n of ascending.slice(0, drop)) versions.delete(n);
    oldestVersion = ascending[drop]!;
  }
  return {
    revision: record?.revision ?? 0,
    currentVersion: version,
    oldestVersion,
    createdTime: record?.createdTime ?? now,
    updatedTime: now,
    maxVersions,
    versions,
    ...(record?.customMetadata === undefined ? {} : { customMetadata: record.customMetadata }),
    ...withExpiry(expiry.expiresAt ?? record?.expiresAt),
  };
}

/** Expiry a put sets [ours]; an absent field leaves the record's as it is. */
export interface PutExpiry {
  /** When the new version expires. */
  readonly versionExpiresAt?: Date;
  /** When the whole secret expires (replaces an earlier one). */
  readonly expiresAt?: Date;
}

/** `{expiresAt}` when set, else nothing (a record without expiry has no such field). */
function withExpiry(expiresAt: Date | undefined): { expiresAt?: Date } {
  return expiresAt === undefined ? {} : { expiresAt };
}

/** The record with the whole secret's expiry set to `expiresAt`, or cleared when `null` [ours]. */
export function setSecretExpiry(record: SecretRecord, expiresAt: Date | null): SecretRecord {
  if ((record.expiresAt?.getTime() ?? null) === (expiresAt?.getTime() ?? null)) return record;
  const { expiresAt: _old, ...rest } = record;
  return { ...rest, ...withExpiry(expiresAt ?? undefined) };
}

/** Applies `deletedTime` changes and recomputes current/oldest/updated as SPIKE does. */
function withDeletedTimes(
  record: SecretRecord,
  targets: readonly number[],
  deletedTime: Date | null,
  now: Date,
): SecretRecord {
  const versions = new Map(record.versions);
  let changed = false;
  for (const n of targets) {
    const v = versions.get(n);
    // A version that does not exist (never written, pruned, or "current"
    // when there is none) is skipped, as in SPIKE; so is a destroyed one,
    // and an expired one is not restored.
    if (!v || isDestroyed(v) || (v.deletedTime === null) === (deletedTime === null)) continue;
    if (deletedTime === null && hasPassed(v.expiresAt, now)) continue;
    versions.set(n, { ...v, deletedTime });
    changed = true;
  }
  const currentVersion = highestLive(versions);
  const oldestVersion = lowestLive(versions);
  if (!changed && currentVersion === record.currentVersion && oldestVersion === record.oldestVersion) {
    return record;
  }
  return {
    ...record,
    currentVersion,
    oldestVersion,
    updatedTime: currentVersion === record.currentVersion ? record.updatedTime : now,
    versions: changed ? versions : record.versions,
  };
}

/**
 * The record after a soft delete of `versions` (`[]` or `0` = the current
 * version). Missing versions are ignored; already-deleted ones keep their
 * `deletedTime`.
 */
export function deleteVersions(record: SecretRecord, versions: readonly number[], now: Date): SecretRecord {
  const current = record.currentVersion;
  const targets = versions.length === 0 ? [current] : versions.map((n) => n === 0 ? current : n);
  return withDeletedTimes(record, targets, now, now);
}

/**
 * The record after an undelete of `versions`, or `undefined` when none of
 * them names a deleted version (nothing to restore: a 404 upstream).
 * `0` = the current version; `[]` = the current version, or the highest
 * deleted one when there is no current version (SPIKE's rules exactly).
 */
export function undeleteVersions(
  record: SecretRecord,
  versions: readonly number[],
  now: Date,
): SecretRecord | undefined {
  const current = record.currentVersion;
  const targets = versions.length === 0
    ? [current === 0 ? highestDeleted(record.versions, now) : current]
    : versions.map((n) => n === 0 ? current : n);
  // Version 0 never exists, so "current" with no current version is skipped.
  if (!targets.some((n) => restorable(record.versions.get(n), now))) return undefined;
  return withDeletedTimes(record, targets, null, now);
}

/**
 * The record after destroying `versions` [ours]: each named version that
 * exists loses its sealed bytes for good and is marked deleted (an earlier
 * `deletedTime` is kept); current and oldest move as after a delete.
 * Versions that do not exist, or are destroyed already, are skipped.
 */
export function destroyVersions(record: SecretRecord, versions: readonly number[], now: Date): SecretRecord {
  return withDestroyed(record, versions, now, (v) => v.deletedTime ?? now);
}

/**
 * The record after the expiry sweep's pass over it [ours]: every version
 * whose expiry has passed at `now` is destroyed (its `deletedTime` is when
 * it expired, unless it was deleted before), and loses its expiry, so the
 * sweep does not find it again. The secret's own expiry is the sweep's
 * business (it removes the whole path), not this function's.
 */
export function expireVersions(record: SecretRecord, now: Date): SecretRecord {
  const expired = [...record.versions.values()].filter((v) => hasPassed(v.expiresAt, now)).map((v) => v.version);
  return withDestroyed(record, expired, now, (v) => v.deletedTime ?? v.expiresAt ?? now);
}

/**
 * Destroys `targets`: sealed bytes emptied, `deletedTime` from
 * `deletedTimeOf`, expiry dropped (nothing is left to expire). Missing
 * versions are skipped, and destroyed ones unless they still carry an
 * expiry, which would keep the sweep finding them.
 */
function withDestroyed(
  record: SecretRecord,
  targets: readonly number[],
  now: Date,
  deletedTimeOf: (v: SecretVersion) => Date,
): SecretRecord {
  const next = new Map(record.versions);
  let changed = false;
  for (const n of targets) {
    const v = next.get(n);
    if (!v || (isDestroyed(v) && v.expiresAt === undefined)) continue;
    const { expiresAt: _expiry, ...rest } = v;
    next.set(n, { ...rest, deletedTime: deletedTimeOf(v), sealed: new Uint8Array(0) });
    changed = true;
  }
  if (!changed) return record;
  const currentVersion = highestLive(next);
  return {
    ...record,
    currentVersion,
    oldestVersion: lowestLive(next),
    updatedTime: currentVersion === record.currentVersion ? record.updatedTime : now,
    versions: next,
  };
}

/**
 * The version a read returns: `version` (0 or absent = current), or
 * `undefined` when it does not exist or is deleted (a 404 upstream). With
 * `now` [ours], an expired version counts as deleted and an expired secret
 * has no version at all.
 */
export function selectVersion(record: SecretRecord, version?: number, now?: Date): SecretVersion | undefined {
  if (now && secretExpired(record, now)) return undefined;
  const wanted = version ? version : currentVersionOf(record, now);
  if (wanted === 0) return undefined;
  const found = record.versions.get(wanted);
  return found && readable(found, now) ? found : undefined;
}

/**
 * The metadata response for `record`. An explicit `version` only gates the
 * answer, as in SPIKE: it must exist and not be deleted, else `undefined`
 * (a 404 upstream). Without one (0 or absent) the path's metadata is always
 * given, also when every version is deleted (`currentVersion` 0), so that
 * metadata and the secret list agree about which paths exist. Every kept
 * version is listed. With `now` [ours], an expired secret has no metadata
 * (`undefined`), and `currentVersion` skips expired versions.
 */
export function metadataView(record: SecretRecord, version?: number, now?: Date): MetadataView | undefined {
  if (now && secretExpired(record, now)) return undefined;
  if (version && !selectVersion(record, version, now)) return undefined;
  const versions: Record<string, VersionInfoView> = {};
  for (const n of [...record.versions.keys()].sort((a, b) => a - b)) {
    const v = record.versions.get(n)!;
    versions[String(n)] = {
      createdTime: v.createdTime.toISOString(),
      version: n,
      deletedTime: v.deletedTime === null ? null : v.deletedTime.toISOString(),
      ...(isDestroyed(v) ? { destroyed: true as const } : {}),
      ...(v.expiresAt === undefined ? {} : { expiresAt: v.expiresAt.toISOString() }),
    };
  }
  return {
    versions,
    metadata: {
      currentVersion: currentVersionOf(record, now),
      oldestVersion: record.oldestVersion,
      createdTime: record.createdTime.toISOString(),
      updatedTime: record.updatedTime.toISOString(),
      maxVersions: record.maxVersions,
      ...(record.expiresAt === undefined ? {} : { expiresAt: record.expiresAt.toISOString() }),
    },
  };
}

/**
 * The record without versions `numbers` (removed for good, as pruning does),
 * with the current and oldest versions moved to versions still kept when
 * theirs went. A rotation uses it for versions that fail authentication.
 */
export function withoutVersions(record: SecretRecord, numbers: readonly number[]): SecretRecord {
  const versions = new Map(record.versions);
  for (const n of numbers) versions.delete(n);
  if (versions.size === record.versions.size) return record;
  const currentVersion = versions.has(record.currentVersion) ? record.currentVersion : highestLive(versions);
  const kept = [...versions.keys()];
  const oldestVersion = versions.has(record.oldestVersion) || record.oldestVersion === 0
    ? record.oldestVersion
    : kept.length === 0
    ? 0
    : Math.min(...kept);
  return { ...record, currentVersion, oldestVersion, versions };
}
