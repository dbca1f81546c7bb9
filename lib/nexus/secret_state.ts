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
  };
}

function highestVersion(record: SecretRecord): number {
  let highest = record.currentVersion;
  for (const n of record.versions.keys()) if (n > highest) highest = n;
  return highest;
}

function highestLive(versions: ReadonlyMap<number, SecretVersion>): number {
  let highest = 0;
  for (const [n, v] of versions) if (v.deletedTime === null && n > highest) highest = n;
  return highest;
}

function lowestLive(versions: ReadonlyMap<number, SecretVersion>): number {
  let lowest = 0;
  for (const [n, v] of versions) if (v.deletedTime === null && (lowest === 0 || n < lowest)) lowest = n;
  return lowest;
}

function highestDeleted(versions: ReadonlyMap<number, SecretVersion>): number {
  let highest = 0;
  for (const [n, v] of versions) if (v.deletedTime !== null && n > highest) highest = n;
  return highest;
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
 * bind the number into the ciphertext's associated data; `keyVersion` is
 * the root key version it sealed under (default 1).
 *
 * @throws {RangeError} when `maxVersions` is not a positive integer.
 */
export function nextVersionForPut(
  record: SecretRecord | undefined,
  now: Date,
  maxVersions: number,
  sealedFor: (version: number) => Uint8Array,
  keyVersion = 1,
): SecretRecord {
  if (!Number.isSafeInteger(maxVersions) || maxVersions < 1) {
    throw new RangeError("maxVersions must be a positive integer");
  }
  const version = nextVersionNumber(record);
  const versions = new Map(record?.versions);
  versions.set(version, { version, createdTime: now, deletedTime: null, sealed: sealedFor(version), keyVersion });
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
  };
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
    // when there is none) is skipped, as in SPIKE.
    if (!v || (v.deletedTime === null) === (deletedTime === null)) continue;
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
    ? [current === 0 ? highestDeleted(record.versions) : current]
    : versions.map((n) => n === 0 ? current : n);
  // Version 0 never exists, so "current" with no current version is skipped.
  const restorable = targets.some((n) => record.versions.get(n)?.deletedTime != null);
  if (!restorable) return undefined;
  return withDeletedTimes(record, targets, null, now);
}

/**
 * The version a read returns: `version` (0 or absent = current), or
 * `undefined` when it does not exist or is deleted (a 404 upstream).
 */
export function selectVersion(record: SecretRecord, version?: number): SecretVersion | undefined {
  const wanted = version ? version : record.currentVersion;
  if (wanted === 0) return undefined;
  const found = record.versions.get(wanted);
  return found && found.deletedTime === null ? found : undefined;
}

/**
 * The metadata response for `record`. An explicit `version` only gates the
 * answer, as in SPIKE: it must exist and not be deleted, else `undefined`
 * (a 404 upstream). Without one (0 or absent) the path's metadata is always
 * given, also when every version is deleted (`currentVersion` 0), so that
 * metadata and the secret list agree about which paths exist. Every kept
 * version is listed.
 */
export function metadataView(record: SecretRecord, version?: number): MetadataView | undefined {
  if (version && !selectVersion(record, version)) return undefined;
  const versions: Record<string, VersionInfoView> = {};
  for (const n of [...record.versions.keys()].sort((a, b) => a - b)) {
    const v = record.versions.get(n)!;
    versions[String(n)] = {
      createdTime: v.createdTime.toISOString(),
      version: n,
      deletedTime: v.deletedTime === null ? null : v.deletedTime.toISOString(),
    };
  }
  return {
    versions,
    metadata: {
      currentVersion: record.currentVersion,
      oldestVersion: record.oldestVersion,
      createdTime: record.createdTime.toISOString(),
      updatedTime: record.updatedTime.toISOString(),
      maxVersions: record.maxVersions,
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
