/**
 * A store that keeps everything in process memory: for tests, `spike dev`
 * and short-lived setups. Data is gone when the process ends.
 *
 * Every method copies on the way in and on the way out, so no caller can
 * change stored data through a reference it kept or was given — the same
 * behaviour a database backend has by nature.
 *
 * @module
 */
import { compareByteOrder, pageRange } from "./byte_order.ts";
import { localExclusive } from "./exclusive.ts";
import { settle } from "./settle.ts";
import { StaleKeyVersionError } from "./errors.ts";
import { INITIAL_KEY_STATE } from "./key_state.ts";
import {
  checkKeyStateChange,
  checkListExpired,
  checkMetaKey,
  checkMetaValue,
  checkPathPage,
  checkPolicy,
  checkPolicyReplacements,
  checkScan,
  checkSealedPolicy,
  checkSealedUnder,
  checkSecretDelete,
  checkSecretMove,
  checkSecretWrite,
  checkSecretWrites,
} from "./record_check.ts";
import type {
  KeyState,
  PolicyRecord,
  SealedBelowCount,
  SealedPolicy,
  SecretRecord,
  SecretVersion,
  SecretWrite,
  Store,
  StoredPolicy,
} from "./types.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";

function copyVersion(v: SecretVersion): SecretVersion {
  return {
    version: v.version,
    createdTime: new Date(v.createdTime),
    deletedTime: v.deletedTime === null ? null : new Date(v.deletedTime),
    sealed: v.sealed.slice(),
    keyVersion: v.keyVersion,
    ...(v.expiresAt === undefined ? {} : { expiresAt: new Date(v.expiresAt) }),
  };
}

function copyKeyState(k: KeyState): KeyState {
  return {
    ...k,
    targetCheck: k.targetCheck?.slice() ?? null,
    leaseUntil: k.leaseUntil && new Date(k.leaseUntil),
    startedAt: k.startedAt && new Date(k.startedAt),
  };
}

function copySecret(r: SecretRecord, revision: number): SecretRecord {
  const versions = new Map<number, SecretVersion>();
  for (const [n, v] of r.versions) versions.set(n, copyVersion(v));
  return {
    revision,
    currentVersion: r.currentVersion,
    oldestVersion: r.oldestVersion,
    createdTime: new Date(r.createdTime),
    updatedTime: new Date(r.updatedTime),
    maxVersions: r.maxVersions,
    versions,
    ...(r.customMetadata === undefined
      ? {}
      : { customMetadata: { sealed: r.customMetadata.sealed.slice(), keyVersion: r.customMetadata.keyVersion } }),
    ...(r.expiresAt === undefined ? {} : { expiresAt: new Date(r.expiresAt) }),
  };
}

function copyRecord(p: PolicyRecord): PolicyRecord {
  return {
    name: p.name,
    spiffeIdPattern: p.spiffeIdPattern,
    pathPattern: p.pathPattern,
    permissions: [...p.permissions],
    createdAt: new Date(p.createdAt),
    updatedAt: new Date(p.updatedAt),
  };
}

function sealedRow(p: SealedPolicy): StoredPolicy {
  return { kind: "sealed", name: p.name, keyVersion: p.keyVersion, sealed: p.sealed.slice() };
}

function copyPolicy(p: StoredPolicy): StoredPolicy {
  if (p.kind === "sealed") return sealedRow(p);
  return p.record ? { kind: "plain", name: p.name, record: copyRecord(p.record) } : { kind: "plain", name: p.name };
}

/** Whether `stored` is still the row `expected` describes. */
function unchanged(stored: StoredPolicy | undefined, expected: StoredPolicy): boolean {
  if (!stored || stored.kind !== expected.kind) return false;
  if (stored.kind === "plain" || expected.kind === "plain") return true;
  return stored.keyVersion === expected.keyVersion && constantTimeEqual(stored.sealed, expected.sealed);
}

/** Options of the memory store. */
export interface MemoryStoreOptions {
  /**
   * Plain-text policy rows to start with, as a store written before policies
   * were sealed holds them (tests of the migration use it).
   */
  readonly plainPolicies?: readonly PolicyRecord[];
}

/**
 * Creates an in-memory store (empty, but for `options.plainPolicies`).
 * Compare-and-swap is atomic because each method body runs without yielding
 * to the event loop.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const secrets = new Map<string, SecretRecord>();
  const policies = new Map<string, StoredPolicy>();
  for (const record of options.plainPolicies ?? []) {
    checkPolicy(record);
    policies.set(record.name, { kind: "plain", name: record.name, record: copyRecord(record) });
  }
  const meta = new Map<string, Uint8Array>();
  let keyState = copyKeyState(INITIAL_KEY_STATE);
  let policyGeneration = 0;
  let closed = false;
  const exclusive = localExclusive();
  // Paths in byte order, rebuilt after a path is added or removed: pages are
  // then a binary search and a slice, not a sort of every path per page.
  let sorted: string[] | undefined;

  function sortedPaths(): string[] {
    sorted ??= [...secrets.keys()].sort(compareByteOrder);
    return sorted;
  }

  /** Index of the first entry of `list` at or after `text` (`inclusive`) or after it. */
  function lowerBound(list: readonly string[], text: string, inclusive: boolean): number {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareByteOrder(list[mid]!, text);
      if (c < 0 || (!inclusive && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Refuses a write that sealed new data under a version the store no longer takes. */
  function gate(sealedUnder: number | undefined): void {
    if (sealedUnder !== undefined && sealedUnder < keyState.minWriteVersion) {
      throw new StaleKeyVersionError(sealedUnder, keyState.minWriteVersion);
    }
  }

  /** The compare-and-swap of one write. */
  function swap({ path, expectedRevision, next }: SecretWrite): boolean {
    if ((secrets.get(path)?.revision ?? 0) !== expectedRevision) return false;
    if (expectedRevision === 0) sorted = undefined;
    secrets.set(path, copySecret(next, expectedRevision + 1));
    return true;
  }

  /** Whether anything of `record` is sealed under a version below `version`. */
  function holdsBelow(record: SecretRecord, version: number): boolean {
    return (record.customMetadata !== undefined && record.customMetadata.keyVersion < version) ||
      [...record.versions.values()].some((v) => v.keyVersion < version);
  }

  function sealedBelow(version: number): SealedBelowCount {
    let secretVersions = 0;
    let customMetadata = 0;
    for (const record of secrets.values()) {
      for (const v of record.versions.values()) if (v.keyVersion < version) secretVersions++;
      if (record.customMetadata !== undefined && record.customMetadata.keyVersion < version) customMetadata++;
    }
    let policyRows = 0;
    for (const p of policies.values()) if (p.kind === "sealed" && p.keyVersion < version) policyRows++;
    return { secretVersions, customMetadata, policies: policyRows };
  }

  /** Runs `work` on the open store; a closed store rejects. */
  function run<T>(work: () => T): Promise<T> {
    return settle(() => {
      if (closed) throw new Error("store is closed");
      return work();
    });
  }

  return {
    readSecret(path) {
      return run(() => {
        const stored = secrets.get(path);
        return stored && copySecret(stored, stored.revision);
      });
    },

    writeSecret(path, expectedRevision, next, options = {}) {
      return run(() => {
        checkSecretWrite(path, expectedRevision, next);
        checkSealedUnder(options.sealedUnder);
        gate(options.sealedUnder);
        return swap({ path, expectedRevision, next });
      });
    },

    writeSecrets(writes) {
      return run(() => {
        checkSecretWrites(writes);
        for (const write of writes) gate(write.sealedUnder);
        return writes.map(swap);
      });
    },

    secretPathsSealedBelow(version, after, limit) {
      return run(() => {
        checkScan(version, after, limit);
        // Walks the sorted paths from the cursor, as the SQL backends walk their index.
        const list = sortedPaths();
        const out: string[] = [];
        for (let i = lowerBound(list, after, false); i < list.length && out.length < limit; i++) {
          if (holdsBelow(secrets.get(list[i]!)!, version)) out.push(list[i]!);
        }
        return out;
      });
    },

    countSealedBelow(version) {
      return run(() => sealedBelow(version));
    },

    keyState() {
      return run(() => copyKeyState(keyState));
    },

    changeKeyState(expectedRevision, next, options = {}) {
      return run(() => {
        checkKeyStateChange(expectedRevision, next);
        if (keyState.revision !== expectedRevision) return false;
        if (options.requireNoneBelow !== undefined) {
          const left = sealedBelow(options.requireNoneBelow);
          if (left.secretVersions > 0 || left.customMetadata > 0 || left.policies > 0) return false;
        }
        keyState = copyKeyState({ ...next, revision: expectedRevision + 1 });
        return true;
      });
    },

    deleteSecret(path, expectedRevision) {
      return run(() => {
        checkSecretDelete(path, expectedRevision);
        if (secrets.get(path)?.revision !== expectedRevision) return false;
        sorted = undefined;
        return secrets.delete(path);
      });
    },

    moveSecret(from, fromRevision, to, toRevision, next, options = {}) {
      return run(() => {
        checkSecretMove(from, fromRevision, to, toRevision, next);
        checkSealedUnder(options.sealedUnder);
        gate(options.sealedUnder);
        if (secrets.get(from)?.revision !== fromRevision) return false;
        if ((secrets.get(to)?.revision ?? 0) !== toRevision) return false;
        secrets.delete(from);
        secrets.set(to, copySecret(next, toRevision + 1));
        sorted = undefined;
        return true;
      });
    },

    listExpired(now, limit) {
      return run(() => {
        checkListExpired(now, limit);
        const expired = (at: Date | undefined) => at !== undefined && at.getTime() <= now.getTime();
        const out: string[] = [];
        for (const [path, record] of secrets) {
          if (out.length >= limit) break;
          if (expired(record.expiresAt) || [...record.versions.values()].some((v) => expired(v.expiresAt))) {
            out.push(path);
          }
        }
        return out;
      });
    },

    tryExclusive(work) {
      if (closed) return Promise.reject(new Error("store is closed"));
      return exclusive(work);
    },

    listSecretPaths() {
      return run(() => [...sortedPaths()]);
    },

    listSecretPathsPage(query) {
      return run(() => {
        checkPathPage(query);
        const prefix = query.prefix ?? "";
        const { from, inclusive } = pageRange(query);
        const list = sortedPaths();
        const out: string[] = [];
        for (let i = lowerBound(list, from, inclusive); i < list.length && out.length < query.limit; i++) {
          if (!list[i]!.startsWith(prefix)) break;
          out.push(list[i]!);
        }
        return out;
      });
    },

    upsertPolicy(policy) {
      return run(() => {
        checkSealedPolicy(policy);
        gate(policy.keyVersion);
        policies.set(policy.name, sealedRow(policy));
        policyGeneration++;
      });
    },

    getPolicy(name) {
      return run(() => {
        const stored = policies.get(name);
        return stored && copyPolicy(stored);
      });
    },

    deletePolicy(name) {
      return run(() => {
        const deleted = policies.delete(name);
        if (deleted) policyGeneration++;
        return deleted;
      });
    },

    listPolicies() {
      return run(() =>
        [...policies.values()]
          .sort((a, b) => compareByteOrder(a.name, b.name))
          .map((p) => copyPolicy(p))
      );
    },

    replacePolicies(replacements) {
      return run(() => {
        checkPolicyReplacements(replacements);
        for (const { next } of replacements) if (next) gate(next.keyVersion);
        const applied = replacements.map(({ expected, next }) => {
          if (!unchanged(policies.get(expected.name), expected)) return false;
          if (next) policies.set(next.name, sealedRow(next));
          else policies.delete(expected.name);
          return true;
        });
        if (applied.includes(true)) policyGeneration++;
        return applied;
      });
    },

    policyGeneration() {
      return run(() => policyGeneration);
    },

    getMeta(key) {
      return run(() => meta.get(key)?.slice());
    },

    putMeta(key, value) {
      return run(() => {
        checkMetaKey(key);
        checkMetaValue(value);
        meta.set(key, value.slice());
      });
    },

    hasData() {
      return run(() => secrets.size > 0 || policies.size > 0 || meta.size > 0);
    },

    counts() {
      return run(() => ({ secrets: secrets.size, policies: policies.size }));
    },

    ping() {
      return run(() => undefined);
    },

    close() {
      closed = true;
      secrets.clear();
      sorted = undefined;
      policies.clear();
      meta.clear();
      return Promise.resolve();
    },
  };
}
