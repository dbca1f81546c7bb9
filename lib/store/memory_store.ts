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
import { localExclusive } from "./exclusive.ts";
import { settle } from "./settle.ts";
import {
  checkListExpired,
  checkMetaKey,
  checkMetaValue,
  checkPathPage,
  checkPolicy,
  checkSecretDelete,
  checkSecretMove,
  checkSecretWrite,
} from "./record_check.ts";
import type { PolicyRecord, SecretRecord, SecretVersion, Store } from "./types.ts";

function copyVersion(v: SecretVersion): SecretVersion {
  return {
    version: v.version,
    createdTime: new Date(v.createdTime),
    deletedTime: v.deletedTime === null ? null : new Date(v.deletedTime),
    sealed: v.sealed.slice(),
    ...(v.expiresAt === undefined ? {} : { expiresAt: new Date(v.expiresAt) }),
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
    ...(r.customMetadata === undefined ? {} : { customMetadata: r.customMetadata.slice() }),
    ...(r.expiresAt === undefined ? {} : { expiresAt: new Date(r.expiresAt) }),
  };
}

function copyPolicy(p: PolicyRecord, createdAt = p.createdAt): PolicyRecord {
  return {
    name: p.name,
    spiffeIdPattern: p.spiffeIdPattern,
    pathPattern: p.pathPattern,
    permissions: [...p.permissions],
    createdAt: new Date(createdAt),
    updatedAt: new Date(p.updatedAt),
  };
}

/**
 * Creates an empty in-memory store. Compare-and-swap is atomic because each
 * method body runs without yielding to the event loop.
 */
export function createMemoryStore(): Store {
  const secrets = new Map<string, SecretRecord>();
  const policies = new Map<string, PolicyRecord>();
  const meta = new Map<string, Uint8Array>();
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

    writeSecret(path, expectedRevision, next) {
      return run(() => {
        checkSecretWrite(path, expectedRevision, next);
        if ((secrets.get(path)?.revision ?? 0) !== expectedRevision) return false;
        if (expectedRevision === 0) sorted = undefined;
        secrets.set(path, copySecret(next, expectedRevision + 1));
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

    moveSecret(from, fromRevision, to, toRevision, next) {
      return run(() => {
        checkSecretMove(from, fromRevision, to, toRevision, next);
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
        const list = sortedPaths();
        const start = Math.max(
          lowerBound(list, prefix, true),
          query.after === undefined ? 0 : lowerBound(list, query.after, false),
        );
        const out: string[] = [];
        for (let i = start; i < list.length && out.length < query.limit; i++) {
          if (!list[i]!.startsWith(prefix)) break;
          out.push(list[i]!);
        }
        return out;
      });
    },

    upsertPolicy(policy) {
      return run(() => {
        checkPolicy(policy);
        const stored = copyPolicy(policy, policies.get(policy.name)?.createdAt);
        policies.set(policy.name, stored);
        policyGeneration++;
        return copyPolicy(stored);
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
