/**
 * The policy set, re-read, opened and recompiled only when it changed. Every
 * authorization asks the store for its policy generation (one single-row
 * read) and reuses the set built under that generation; a policy written
 * through any Nexus sharing the store changes the generation, so the next
 * request of every Nexus reads the new list. Nothing is served from a copy
 * older than the generation the request itself observed.
 *
 * Policies are sealed in the store (`policy_seal.ts`). A build opens each
 * row, reusing what the previous build opened when a row's bytes did not
 * change, so one changed policy among thousands costs one decryption. A row
 * that does not open, or a plain-text row, is tampering: it is left out
 * (treated as absent), logged at error level and counted.
 *
 * @module
 */
import { encodeBase64 } from "../api/base64.ts";
import type { Logger } from "../log/logger.ts";
import type { PolicyRecord, SealedPolicyRow, Store } from "../store/types.ts";
import { CompiledPolicySet } from "./compiled_policy_set.ts";
import { openPolicy } from "./policy_seal.ts";
import type { RootKeyState } from "./root_key_state.ts";
import { StoredPolicyFilter } from "./stored_policy_filter.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";

/** The policies of one generation, opened and compiled; shared by all requests. */
export interface PolicyGeneration {
  /** The obeyed policies, compiled for authorization. */
  readonly set: CompiledPolicySet;
  /** Every policy that opened (obeyed or not), sorted by name as the store lists them. */
  readonly authentic: readonly PolicyRecord[];
  /** `authentic` by name. */
  readonly byName: ReadonlyMap<string, PolicyRecord>;
  /** Names of rows that failed authentication or are plain text: treated as absent. */
  readonly tampered: readonly string[];
  /** Root key versions rows were sealed under that this Nexus does not hold (those rows are left out). */
  readonly missingKeyVersions: readonly number[];
}

/** What the snapshot needs. */
export interface PolicySnapshotDeps {
  /** Hears of tampered rows (error) and of stored policies not obeyed by rule (error). */
  readonly log: Logger;
  /** The keys policies are opened with. */
  readonly keys: RootKeyState;
  /**
   * Whether root key version `version`, which this Nexus does not hold, is
   * in use by the store (another Nexus rotated and this one has not caught
   * up yet). Rows under such a version are left out for now, not counted as
   * tampering. Without this, a row under a version not held is tampering.
   */
  readonly versionInUse?: (version: number) => Promise<boolean>;
}

/** A build started (or finished) under one store generation and one set of keys. */
interface Build {
  readonly stamp: string;
  /** Order in which builds started: a later build read a list at least as new. */
  readonly sequence: number;
  readonly result: Promise<Built>;
}

interface Built {
  readonly generation: PolicyGeneration;
  /** Each authentic row with what it opened to, by name, for the next build. */
  readonly opened: ReadonlyMap<string, OpenedRow>;
  /** Identities of the rows that failed, so a row is counted once however often it is seen. */
  readonly failed: ReadonlySet<string>;
}

/** A row that opened, and to what. */
interface OpenedRow {
  readonly row: SealedPolicyRow;
  readonly record: PolicyRecord;
}

/** A reusable, opened and compiled policy set, checked against the store on every use. */
export class PolicySnapshot {
  readonly #deps: PolicySnapshotDeps;
  readonly #filter = new StoredPolicyFilter();
  #ready: { readonly sequence: number; readonly stamp: string; readonly built: Built } | undefined;
  #pending: Build | undefined;
  #started = 0;
  #tamperedTotal = 0;

  /** Creates an empty snapshot. */
  constructor(deps: PolicySnapshotDeps) {
    this.#deps = deps;
  }

  /** How many distinct tampered rows (name and content) builds have found since start. */
  get tamperedTotal(): number {
    return this.#tamperedTotal;
  }

  /** The generation built last, if any (metrics read it without touching the store). */
  get lastGeneration(): PolicyGeneration | undefined {
    return this.#ready?.built.generation;
  }

  /** The obeyed policies of `store`, compiled (see {@linkcode generation}). */
  async current(store: Store): Promise<CompiledPolicySet> {
    return (await this.generation(store)).set;
  }

  /**
   * The current policies of `store`, opened and compiled. The generation is
   * read before the list, so a change landing in between makes the stored
   * set look old, never new: the next call builds again. A change of the
   * keys held (a rotation) makes it build again too.
   *
   * Requests that see a new generation while its set is being built wait for
   * that one build instead of each reading and compiling the list again.
   */
  async generation(store: Store): Promise<PolicyGeneration> {
    const stamp = `${await store.policyGeneration()}:${this.#deps.keys.epoch}`;
    if (this.#ready?.stamp === stamp) return this.#ready.built.generation;
    if (this.#pending?.stamp === stamp) return (await this.#pending.result).generation;
    const build: Build = { stamp, sequence: ++this.#started, result: this.#build(store) };
    this.#pending = build;
    try {
      const built = await build.result;
      // A build that started later may have finished first; keep the newer one.
      if (!this.#ready || this.#ready.sequence < build.sequence) {
        this.#ready = { sequence: build.sequence, stamp, built };
      }
      return built.generation;
    } finally {
      // A failed read is not remembered: the next request tries again.
      if (this.#pending === build) this.#pending = undefined;
    }
  }

  async #build(store: Store): Promise<Built> {
    const rows = await store.listPolicies();
    const previous = this.#ready?.built;
    const { log, keys } = this.#deps;
    const opened = new Map<string, OpenedRow>();
    const failed = new Set<string>();
    const tampered: string[] = [];
    const missing = new Set<number>();
    const records: (PolicyRecord | undefined)[] = new Array(rows.length);
    const toOpen: number[] = [];
    // First pass, synchronous: rows unchanged since the last build keep what they opened to.
    rows.forEach((row, i) => {
      if (row.kind === "plain") {
        tampered.push(row.name);
        failed.add(`plain\0${row.name}`);
        return;
      }
      if (!keys.holds(row.keyVersion)) {
        missing.add(row.keyVersion);
        return;
      }
      const before = previous?.opened.get(row.name);
      if (before && before.row.keyVersion === row.keyVersion && constantTimeEqual(before.row.sealed, row.sealed)) {
        records[i] = before.record;
        opened.set(row.name, before);
      } else {
        toOpen.push(i);
      }
    });
    // Second pass: open what is new or changed, all at once (rows over 2 KiB go to WebCrypto, off the main thread).
    await Promise.all(toOpen.map(async (i) => {
      const row = rows[i] as SealedPolicyRow;
      try {
        const record = await openPolicy(keys.keysFor(row.keyVersion)!.policies, row);
        records[i] = record;
        opened.set(row.name, { row, record });
      } catch {
        tampered.push(row.name);
        failed.add(rowIdentity(row));
      }
    }));
    for (const version of [...missing]) {
      if (this.#deps.versionInUse && await this.#deps.versionInUse(version)) continue;
      missing.delete(version);
      for (const row of rows) {
        if (row.kind === "sealed" && row.keyVersion === version) {
          tampered.push(row.name);
          failed.add(rowIdentity(row));
        }
      }
    }
    const authentic = records.filter((r): r is PolicyRecord => r !== undefined);
    let fresh = 0;
    for (const identity of failed) if (!previous?.failed.has(identity)) fresh++;
    this.#tamperedTotal += fresh;
    if (tampered.length > 0) {
      tampered.sort();
      log.error("stored policies failed authentication and are treated as absent: the store was tampered with", {
        policies: tampered.slice(0, 20).join(", "),
        count: tampered.length,
      });
    }
    if (missing.size > 0) {
      log.warn("stored policies sealed under root key versions this Nexus does not hold are left out for now", {
        versions: [...missing].join(", "),
      });
    }
    const { kept, refused } = await this.#filter.obeyed(authentic);
    if (refused.length > 0) {
      log.error("stored policies not obeyed: their SPIFFE ID pattern does not describe SPIFFE IDs", {
        policies: refused.slice(0, 20).join(", "),
        count: refused.length,
      });
    }
    // Patterns the last set compiled are taken over: one changed policy costs one compilation.
    const set = new CompiledPolicySet(Object.freeze(kept), previous?.generation.set);
    const generation: PolicyGeneration = {
      set,
      authentic: Object.freeze(authentic),
      byName: new Map(authentic.map((r) => [r.name, r])),
      tampered: Object.freeze(tampered),
      missingKeyVersions: Object.freeze([...missing].sort((a, b) => a - b)),
    };
    return { generation, opened, failed };
  }
}

/** A failed row's name, key version and exact bytes, so the same row is counted once. */
function rowIdentity(row: SealedPolicyRow): string {
  return `${row.keyVersion}\0${row.name}\0${encodeBase64(row.sealed)}`;
}
