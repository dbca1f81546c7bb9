/**
 * The audit trail of one Nexus process: every record is sealed into the
 * process's chain (`audit_chain.ts`) and appended to the line output (stdout
 * or a file), and, in audit table mode, inserted into `audit_logs` too.
 *
 * - Before the root key is loaded, records are sealed without a key
 *   (`keyVersion: null`, plain SHA-256) and written at once, never held
 *   back; when the key arrives a `key` record signed with it follows, and
 *   its MAC covers the whole unkeyed run through the `prev` links.
 * - An output that fails loses the records it could not store; when it
 *   works again the trail writes a MAC'd `lost` record naming their
 *   sequence numbers and the error, so a verifier tells a full disk from a
 *   deletion. Failures and recoveries are logged once each, not per record.
 * - Lines are appended in the order they were sealed. Without fail-closed,
 *   the lines sealed within one turn of the event loop go out in one write
 *   at the end of it (a microtask), still before any answer they belong to
 *   leaves: a request's record is sealed before its answer is written, and
 *   the write is queued ahead of that.
 * - Fail-closed (`SPIKE_NEXUS_AUDIT_FAIL_CLOSED`): each line is written at
 *   once, and a record counts as written only once the file is synced (fdatasync: a write into the page
 *   cache can still fail later on a full disk) and, in table mode, its row
 *   committed; `record` and `intent` say when it was not, and the app
 *   refuses the request.
 * - The expiry sweep [ours] writes `audit-sweep` records: a batch's intent
 *   (its paths) is stored, as the mode requires, before the batch changes
 *   anything, and its outcome follows (`sweep`).
 * - The file can be reopened (log rotation): the old file ends with a
 *   `reopen` record, the new one starts a segment with a `segment` record
 *   linked to it. Stop writes a `stop` record.
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import { CHAIN_RECORD, type ChainEvent } from "../audit/chain_format.ts";
import type { Logger } from "../log/logger.ts";
import type { AuditRow } from "../store/audit_row.ts";
import type { AuditIntent, AuditIntentTicket, AuditRecord, AuditSink, SweepRecord } from "./audit.ts";
import { AuditChain, type SealedRecord } from "./audit_chain.ts";
import type { AuditKeySource } from "./audit_key.ts";
import type { LineTarget } from "./audit_output.ts";
import { AuditRowQueue } from "./audit_row_queue.ts";

/** The audit table, as the trail uses it. */
export interface AuditRowSink {
  /** Inserts rows in one statement; `durable: false` lets it answer before they reach disk. */
  insert(rows: readonly AuditRow[], options: { readonly durable: boolean }): Promise<void>;
}

/** What a trail is built from. */
export interface AuditTrailOptions {
  /** The line output. */
  readonly target: LineTarget;
  /** Diagnostics. */
  readonly log: Logger;
  /** Wall clock. */
  readonly clock: () => Date;
  /** Refuse requests whose record cannot be written. */
  readonly failClosed: boolean;
  /** Audit keys (absent: records stay unkeyed). */
  readonly keys?: AuditKeySource;
  /** The audit table, in table mode. */
  readonly table?: AuditRowSink;
  /** Chain id (default: random). */
  readonly instance?: string;
  /** Hears how many records could not be stored, each time that happens (for `/metrics`). */
  readonly onWriteFailure?: (records: number) => void;
}

type Sink = "file" | "table";

interface Emitted {
  readonly sealed: SealedRecord;
  /** The line output the record went to, and whether the append worked (fail-closed; otherwise not known yet). */
  readonly target: LineTarget;
  readonly appended: boolean;
  /** Whether the row was stored (table mode, not for intents: those go with the change). */
  readonly stored: Promise<boolean> | undefined;
}

/** Most sequence ranges one `lost` record names; more go into the next one. */
const MAX_RANGES_PER_RECORD = 256;

/** A sealed line waiting for the end of the turn, and what to do if it is not written. */
interface Pending {
  readonly line: string;
  readonly seq: number;
  readonly onLost: (() => void) | undefined;
}

/** The chained audit trail. */
export class AuditTrail implements AuditSink {
  readonly #chain: AuditChain;
  readonly #log: Logger;
  readonly #clock: () => Date;
  readonly #failClosed: boolean;
  readonly #onWriteFailure: (records: number) => void;
  readonly #keys: AuditKeySource | undefined;
  readonly #queue: AuditRowQueue | undefined;
  readonly #table: AuditRowSink | undefined;
  #target: LineTarget;
  /** Lines sealed this turn, not yet appended (not fail-closed). */
  #pending: Pending[] = [];
  #stopping = false;
  #closed = false;
  /** Sequence ranges each sink could not store, not yet declared, and the last error. */
  readonly #lost = new Map<Sink, { ranges: Array<[number, number]>; error: string }>();

  /** Creates a trail; call `start` before use. */
  constructor(options: AuditTrailOptions) {
    this.#chain = new AuditChain(options.instance);
    this.#target = options.target;
    this.#log = options.log;
    this.#clock = options.clock;
    this.#failClosed = options.failClosed;
    this.#onWriteFailure = options.onWriteFailure ?? (() => {});
    this.#keys = options.keys;
    const table = options.table;
    this.#table = table;
    // Fail-closed, a row counts only once it is on disk; otherwise the file
    // is the durable record and the table's copy may ride the next WAL flush.
    const durable = this.#failClosed;
    this.#queue = table
      ? new AuditRowQueue((rows) => table.insert(rows, { durable }), (rows, error) => this.#tableOutcome(rows, error))
      : undefined;
    this.intent = this.wantsIntents ? (intent) => this.#writeIntent(intent) : undefined;
  }

  /** This process's chain id. */
  get instance(): string {
    return this.#chain.instance;
  }

  /** Whether intents are written before changes (fail-closed or table mode). */
  get wantsIntents(): boolean {
    return this.#failClosed || this.#queue !== undefined;
  }

  /**
   * Writes the chain's `start` record (and a `key` record when a key is
   * already there). Throws, fail-closed, when the start cannot be written:
   * a Nexus that cannot audit must not serve.
   */
  async start(): Promise<void> {
    const emitted = this.#event("start", { pid: Deno.pid });
    if (this.#failClosed && !(await this.#durable(emitted))) {
      const error = this.#lost.get("file")?.error ?? this.#lost.get("table")?.error ?? "unknown error";
      throw new Error(
        `cannot write the audit trail to ${this.#target.name} (SPIKE_NEXUS_AUDIT_FAIL_CLOSED is on): ${error}`,
      );
    }
    this.#log.info("audit chain started", {
      instance: this.instance,
      output: this.#target.name,
      failClosed: this.#failClosed,
      table: this.#queue !== undefined,
    });
    this.keyChanged();
  }

  /**
   * Picks up the current audit key (call after every root key install):
   * later records are signed with it, starting with a `key` record.
   */
  keyChanged(): void {
    const version = this.#keys?.currentVersion();
    if (version === undefined || this.#closed) return;
    const key = this.#keys!.key(version);
    if (!key || !this.#chain.useKey(key)) return;
    this.#event("key");
    this.#log.info("audit chain keyed", { instance: this.instance, keyVersion: version });
  }

  /** Seals and writes one request's record. Fail-closed: resolves whether it was written durably. */
  record(record: AuditRecord): void | Promise<boolean> {
    if (this.#closed) {
      this.#log.error("audit record after the trail was closed", { route: record.route });
      return this.#failClosed ? Promise.resolve(false) : undefined;
    }
    const emitted = this.#emit(record);
    return this.#failClosed ? this.#durable(emitted) : undefined;
  }

  /**
   * Writes a request's intent before its change; fail-closed, rejects with a
   * 503 when it cannot. Present only in fail-closed or table mode: other
   * trails want no intents.
   */
  readonly intent: ((intent: AuditIntent) => Promise<AuditIntentTicket>) | undefined;

  async #writeIntent(intent: AuditIntent): Promise<AuditIntentTicket> {
    if (this.#closed) throw new ApiError("state_not_ready", "audit trail closed");
    const emitted = this.#emit(intent, { withChange: true });
    if (this.#failClosed && !(await this.#durable(emitted))) {
      this.#log.debug("request refused: its audit intent was not written (fail-closed)", { route: intent.route });
      throw new ApiError("state_not_ready", "audit intent record not written (fail-closed); nothing was changed");
    }
    const queue = this.#queue;
    const row = queue ? rowOf(emitted.sealed) : undefined;
    let settled = false;
    return {
      row,
      settle(carried) {
        if (settled) return;
        settled = true;
        // The intent is true whether or not the change happened; store it on its own.
        if (row && !carried) void queue!.enqueue(row);
      },
    };
  }

  /**
   * Seals and writes a record of the expiry sweep [ours]. Its intent guards
   * the batch's changes: fail-closed, it counts once synced; with an audit
   * table, once its row is committed durably, inserted on its own ahead of
   * the changes (one record stands for a batch of transactions, so it cannot
   * ride in each of them, and inserting it first keeps every swept change
   * behind a stored row all the same). An outcome record is written like a
   * request's.
   */
  async sweep(record: SweepRecord): Promise<boolean> {
    if (this.#closed) {
      this.#log.error("audit record after the trail was closed", { type: record.type });
      return false;
    }
    const guard = record.phase === "intent";
    const emitted = this.#emit(record, { withChange: guard });
    // Not fail-closed, an outcome line goes out at the end of the turn; a failed write is declared (`lost`).
    if (!guard) return this.#failClosed ? await this.#durable(emitted) : true;
    if (this.#failClosed && !(await this.#durable(emitted))) return false;
    if (!this.#table) return true;
    const seq = emitted.sealed.chain.seq;
    try {
      await this.#table.insert([rowOf(emitted.sealed)], { durable: true });
    } catch (error) {
      this.#failed("table", [[seq, seq]], error);
      return false;
    }
    this.#recovered("table");
    return true;
  }

  /** Opens the file again by its path: the old file ends with `reopen`, the new one starts a segment. */
  reopen(): void {
    if (!this.#target.isFile || this.#closed) return;
    let next: LineTarget;
    try {
      next = this.#target.reopen();
    } catch (error) {
      this.#log.error("audit log not reopened; still writing to the old file", { error: (error as Error).message });
      return;
    }
    this.#event("reopen");
    // Everything up to the reopen record belongs to the old file.
    this.#flush();
    const old = this.#target;
    this.#target = next;
    old.close().catch((error) => this.#log.error("audit log: closing the old file failed", { error: String(error) }));
    const segment = this.#chain.nextSegment();
    this.#event("segment");
    this.#log.info("audit log reopened", { file: next.name, segment });
  }

  /**
   * Writes the `stop` record, waits for the table, closes the output and
   * forgets the key. Losses not declared yet are declared before the stop
   * record (nothing may follow it), whether or not their sink works again.
   */
  async close(): Promise<void> {
    if (this.#closed || this.#stopping) return;
    this.#flush();
    await this.#queue?.drain();
    for (const sink of [...this.#lost.keys()]) this.#declare(sink);
    await this.#queue?.drain();
    this.#stopping = true;
    this.#event("stop");
    this.#flush();
    this.#closed = true;
    await this.#queue?.drain();
    await this.#target.close().catch((error) =>
      this.#log.error("audit log: closing the file failed", { error: String(error) })
    );
    this.#chain.close();
  }

  #event(event: ChainEvent, extra: Readonly<Record<string, unknown>> = {}, onLost?: () => void): Emitted {
    return this.#emit({ time: this.#clock().toISOString(), type: CHAIN_RECORD, event, ...extra }, { onLost });
  }

  /**
   * Seals `fields` and appends the line: at once when fail-closed, at the
   * end of the turn otherwise. `onLost` runs if the line is not written.
   */
  #emit(fields: object, options: { withChange?: boolean; onLost?: () => void } = {}): Emitted {
    const sealed = this.#chain.seal(fields);
    const target = this.#target;
    let appended = true;
    if (this.#failClosed) {
      try {
        target.append(sealed.line);
      } catch (error) {
        appended = false;
        this.#failed("file", [[sealed.chain.seq, sealed.chain.seq]], error);
        options.onLost?.();
      }
    } else {
      this.#pending.push({ line: sealed.line, seq: sealed.chain.seq, onLost: options.onLost });
      if (this.#pending.length === 1) queueMicrotask(() => this.#flush());
    }
    const stored = this.#queue && !options.withChange ? this.#queue.enqueue(rowOf(sealed)) : undefined;
    // Declared after the record that proved the file works again.
    if (appended && this.#failClosed) this.#recovered("file");
    return { sealed, target, appended, stored };
  }

  /** Appends the lines sealed so far in one write (all or none). */
  #flush(): void {
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    try {
      this.#target.append(batch.length === 1 ? batch[0]!.line : batch.map((p) => p.line).join("\n"));
    } catch (error) {
      this.#failed("file", batch.map((p) => [p.seq, p.seq]), error);
      for (const p of batch) p.onLost?.();
      return;
    }
    this.#recovered("file");
  }

  /** Whether an emitted record is durable: appended, synced, and its row stored. */
  async #durable(emitted: Emitted): Promise<boolean> {
    if (!emitted.appended) return false;
    try {
      await emitted.target.sync();
    } catch (error) {
      // A sync error may mean the line never reaches the disk: declare it.
      this.#failed("file", [[emitted.sealed.chain.seq, emitted.sealed.chain.seq]], error);
      return false;
    }
    return emitted.stored ? await emitted.stored : true;
  }

  #tableOutcome(rows: readonly AuditRow[], error: unknown): void {
    if (error === undefined) {
      this.#recovered("table");
      return;
    }
    this.#failed("table", rows.map((row) => [row.seq, row.seq]), error);
  }

  #failed(sink: Sink, ranges: ReadonlyArray<readonly [number, number]>, error: unknown): void {
    const message = describe(error);
    this.#onWriteFailure(ranges.reduce((sum, [from, to]) => sum + to - from + 1, 0));
    const entry = this.#lost.get(sink);
    if (!entry) {
      const refusing = this.#failClosed
        ? "; requests are refused (503) until it works (SPIKE_NEXUS_AUDIT_FAIL_CLOSED)"
        : "";
      this.#log.error(
        `audit ${sink === "file" ? "output" : "table"} failing: records are not being stored${refusing}`,
        {
          output: sink === "file" ? this.#target.name : "audit_logs",
          error: message,
          failClosed: this.#failClosed,
        },
      );
    }
    const kept = entry ?? { ranges: [], error: message };
    kept.error = message;
    for (const [from, to] of ranges) addRange(kept.ranges, from, to);
    this.#lost.set(sink, kept);
  }

  /** After a success on `sink`: declares what it lost before, in the chain itself. */
  #recovered(sink: Sink): void {
    if (this.#stopping || !this.#lost.has(sink)) return;
    this.#declare(sink);
  }

  /** Writes `lost` records naming what `sink` could not store. */
  #declare(sink: Sink): void {
    const entry = this.#lost.get(sink);
    if (!entry) return;
    this.#lost.delete(sink);
    const count = entry.ranges.reduce((sum, [from, to]) => sum + to - from + 1, 0);
    this.#log.warn(`audit ${sink === "file" ? "output" : "table"}: records were not stored; declaring them`, {
      lost: count,
      error: entry.error,
    });
    for (let start = 0; start < entry.ranges.length; start += MAX_RANGES_PER_RECORD) {
      const ranges = entry.ranges.slice(start, start + MAX_RANGES_PER_RECORD);
      // The declaration must reach the sink it is about; if it does not, keep the ranges pending.
      const onLost = sink === "file" ? () => this.#failed("file", ranges, entry.error) : undefined;
      const emitted = this.#event("lost", { sink, seqs: ranges, error: entry.error }, onLost);
      if (sink === "table") {
        emitted.stored?.then((stored) => {
          if (!stored) this.#failed("table", ranges, entry.error);
        });
      }
    }
  }
}

/** The table row of a sealed record. */
export function rowOf(sealed: SealedRecord): AuditRow {
  const f = sealed.fields;
  const text = (value: unknown) => typeof value === "string" ? value : null;
  const num = (value: unknown) => typeof value === "number" ? value : null;
  return {
    instance: sealed.chain.instance,
    seq: sealed.chain.seq,
    segment: sealed.chain.segment,
    recordedAt: new Date(String(f.time)),
    type: String(f.type),
    event: text(f.event),
    trail: text(f.trail),
    spiffeId: text(f.spiffeId),
    route: text(f.route),
    action: text(f.action),
    resource: text(f.resource),
    permissions: Array.isArray(f.permissions) ? f.permissions.map(String) : null,
    status: num(f.status),
    err: text(f.err),
    outcome: text(f.outcome),
    durationMs: num(f.durationMs),
    keyVersion: sealed.chain.keyVersion,
    prev: sealed.chain.prev,
    mac: sealed.mac,
    line: sealed.line,
  };
}

/** Adds `from..to` to sorted, disjoint ranges, merging neighbours. */
function addRange(ranges: Array<[number, number]>, from: number, to: number): void {
  ranges.push([from, to]);
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1]);
    else merged.push([range[0], range[1]]);
  }
  ranges.splice(0, ranges.length, ...merged);
}

/** An error's text for logs and `lost` records (OS and driver messages; never request data). */
function describe(error: unknown): string {
  const text = typeof error === "string" ? error : (error as Error)?.message ?? String(error);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
