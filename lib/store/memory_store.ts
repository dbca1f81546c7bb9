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
import { compareByteOrder } from "./byte_order.ts";
import { settle } from "./settle.ts";
import { StaleKeyVersionError } from "./errors.ts";
import { INITIAL_KEY_STATE } from "./key_state.ts";
import {
  checkKeyStateChange,
  checkMetaKey,
  checkMetaValue,
  checkPolicy,
  checkPolicyReplacements,
  checkScan,
  checkSealedPolicy,
  checkSealedUnder,
  checkSecretWrite,
  checkSecretWrites,
} from "./record_check.ts";
import type {
  KeyState,
  PolicyRecord,
  SealedPolicy,
  SecretRecord,
  SecretVersion,
  SecretWrite,
  Store,
  StoredPolicy,
} from "./types.ts";

function copyVersion(v: SecretVersion): SecretVersion {
  return {
    version: v.version,
    createdTime: new Date(v.createdTime),
    deletedTime: v.deletedTime === null ? null : new Date(v.deletedTime),
    sealed: v.sealed.slice(),
    keyVersion: v.keyVersion,
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
  return stored.keyVersion === expected.keyVersion && sameBytes(stored.sealed, expected.sealed);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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

  /** Refuses a write that sealed new data under a version the store no longer takes. */
  function gate(sealedUnder: number | undefined): void {
    if (sealedUnder !== undefined && sealedUnder < keyState.minWriteVersion) {
      throw new StaleKeyVersionError(sealedUnder, keyState.minWriteVersion);
    }
  }

  /** The compare-and-swap of one write. */
  function swap({ path, expectedRevision, next }: SecretWrite): boolean {
    if ((secrets.get(path)?.revision ?? 0) !== expectedRevision) return false;
    secrets.set(path, copySecret(next, expectedRevision + 1));
    return true;
  }

  function sealedBelow(version: number) {
    let secretVersions = 0;
    for (const record of secrets.values()) {
      for (const v of record.versions.values()) if (v.keyVersion < version) secretVersions++;
    }
    let policyRows = 0;
    for (const p of policies.values()) if (p.kind === "sealed" && p.keyVersion < version) policyRows++;
    return { secretVersions, policies: policyRows };
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

    writeSecret(path, expectedRevision, next, sealedUnder) {
      return run(() => {
        checkSecretWrite(path, expectedRevision, next);
        checkSealedUnder(sealedUnder);
        gate(sealedUnder);
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
        return [...secrets.entries()]
          .filter(([path, r]) =>
            compareByteOrder(path, after) > 0 && [...r.versions.values()].some((v) => v.keyVersion < version)
          )
          .map(([path]) => path)
          .sort(compareByteOrder)
          .slice(0, limit);
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
          if (left.secretVersions > 0 || left.policies > 0) return false;
        }
        keyState = copyKeyState({ ...next, revision: expectedRevision + 1 });
        return true;
      });
    },

    listSecretPaths() {
      return run(() => [...secrets.keys()].sort(compareByteOrder));
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

    ping() {
      return run(() => undefined);
    },

    close() {
      closed = true;
      secrets.clear();
      policies.clear();
      meta.clear();
      return Promise.resolve();
    },
  };
}
