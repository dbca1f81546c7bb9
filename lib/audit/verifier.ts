/**
 * Checks a stream of chained audit records (`chain_format.ts`) and names the
 * first bad one: missing, reordered, edited, forged, duplicated, or not a
 * record at all. Pure and streaming: records arrive in input order with the
 * verdict on their MAC already made (by whoever holds the key: Nexus, an
 * offline key rebuilt from recovery shards, or nobody), so memory stays
 * bounded by the number of chains and pending gaps, not the input size.
 *
 * Each Nexus process writes its own chain (its `instance`); records of
 * several instances may be interleaved. Within one chain, `seq` counts up by
 * one, `prev` holds the link to the previous record (a SHA-256, as its
 * format says), and the format stays the same. A gap in `seq` is
 * not judged at once: the records may still come (then they were
 * reordered), Nexus may declare them unwritten in a later MAC'd `lost`
 * record (a full disk), or the input ends (then they are missing).
 *
 * @module
 */
import { CHAIN_RECORD, type ChainedRecord, type ChainFormat, linkAfter, unkeyedMacMatches } from "./chain_format.ts";

/** What the key holder said about a keyed record's MAC. */
export type MacVerdict = "ok" | "mismatch" | "unknown_key" | "unchecked";

/** Where a line is: its source (file name, `-` for stdin) and 1-based line number there. */
export interface Position {
  /** File name as given. */
  readonly source: string;
  /** Line number in that file. */
  readonly line: number;
}

/** Kinds of findings. */
export type FindingKind =
  | "missing"
  | "reordered"
  | "edited"
  | "forged"
  | "duplicated"
  | "malformed"
  | "unverifiable";

/** The first bad record. */
export interface Finding {
  /** What is wrong. */
  readonly kind: FindingKind;
  /** The operator-facing sentence, e.g. `record 57 (line 57 of audit.log): edited (MAC mismatch)`. */
  readonly message: string;
  /** Where it was found. */
  readonly position: Position;
}

/** The outcome of a verification. */
export interface VerifyReport {
  /** No finding. */
  readonly ok: boolean;
  /** Chained records read. */
  readonly records: number;
  /** Distinct (instance, segment) pairs. */
  readonly segments: number;
  /** Distinct instances (Nexus processes). */
  readonly instances: number;
  /** The first bad record, when there is one. */
  readonly finding?: Finding;
  /** Facts an operator should know even when the chain is intact. */
  readonly notes: readonly string[];
}

/** Options of a verification. */
export interface VerifierOptions {
  /**
   * Accept a chain that starts anywhere (an excerpt, e.g. a time range from
   * the audit table) instead of reporting the records before it as missing.
   */
  readonly partial?: boolean;
  /** Most pending gaps kept before the earliest is reported as missing (default 10,000). */
  readonly maxPendingGaps?: number;
}

interface Gap {
  from: number;
  to: number;
  /** Index and position of the record that revealed the gap (the one after it). */
  readonly index: number;
  readonly at: Position;
  readonly atSeq: number;
  /** Position of the record before the gap. */
  readonly before: Position;
}

interface Chain {
  readonly instance: string;
  /** The format of the chain's first record; every later one must share it. */
  readonly format: ChainFormat;
  next: number;
  link: string;
  last: Position;
  lastSeq: number;
  lastIndex: number;
  /** Whether the last record in order had a good (or unchecked) MAC; a bad link is then blamed on the record before. */
  lastTrusted: boolean;
  keyed: boolean;
  after: "reopen" | "stop" | undefined;
  readonly gaps: Gap[];
  readonly segments: Set<number>;
  /** Unkeyed records not yet followed by a keyed one. */
  unkeyedTail: { from: number; to: number } | undefined;
  /** Seqs Nexus declared unwritten, per sink, with the last error it gave. */
  readonly declared: Map<string, { count: number; error: string }>;
}

/** Names records in messages: the instance is named only when the input holds several. */
interface Names {
  /** `record 57`, or `record 57 of instance 3f2a9c1e`. */
  record(instance: string, seq: number): string;
  /** `""`, or ` of instance 3f2a9c1e`. */
  of(instance: string): string;
}

interface Pending {
  readonly index: number;
  readonly kind: FindingKind;
  readonly position: Position;
  /** Formats the message once the instance count is known. */
  readonly describe: (names: Names) => string;
}

/** Streaming chain checker. */
export class ChainVerifier {
  readonly #partial: boolean;
  readonly #maxGaps: number;
  readonly #chains = new Map<string, Chain>();
  #records = 0;
  #index = 0;
  #earliest: Pending | undefined;
  #pendingGaps = 0;
  readonly #notes: string[] = [];

  /** Creates a verifier. */
  constructor(options: VerifierOptions = {}) {
    this.#partial = options.partial ?? false;
    this.#maxGaps = options.maxPendingGaps ?? 10_000;
  }

  /**
   * Whether the first bad record is known for sure: a finding exists and no
   * gap before it is still waiting for its records. Reading further cannot
   * change the answer.
   */
  get settled(): boolean {
    if (!this.#earliest) return false;
    for (const chain of this.#chains.values()) {
      if (chain.gaps.some((gap) => gap.index < this.#earliest!.index)) return false;
    }
    return true;
  }

  /**
   * Takes the next line: `record` is its parse (or why it is not a record),
   * `line` the text as read, `verdict` what the key holder said about its
   * MAC (ignored for records without a key, which are hashed here).
   */
  add(record: ChainedRecord | string, line: string, position: Position, verdict: MacVerdict): void {
    const index = this.#index++;
    if (typeof record === "string") {
      this.#find({
        index,
        kind: "malformed",
        position,
        describe: () => `${at(position)}: not a chained audit record (${record})`,
      });
      return;
    }
    this.#records++;
    const { chain: fields } = record;
    const seq = fields.seq;
    const macOk = fields.keyVersion === null ? unkeyedMacMatches(record) : verdict !== "mismatch";
    const chain = this.#chains.get(fields.instance);

    if (verdict === "unknown_key" && fields.keyVersion !== null) {
      this.#find({
        index,
        kind: "unverifiable",
        position,
        describe: (n) =>
          `${n.record(fields.instance, seq)} (${at(position)}): cannot be checked: ` +
          `audit key version ${fields.keyVersion} is not available to this verifier`,
      });
    }

    if (!chain) {
      this.#advance(this.#open(record, position, index, macOk), record, line, position, index, macOk);
      return;
    }

    const linked = seq === chain.next && fields.prev === chain.link;
    if (!macOk) {
      const unkeyed = fields.keyVersion === null;
      const what = unkeyed ? "its SHA-256 does not match" : "MAC mismatch";
      this.#find({
        index,
        kind: linked ? "edited" : "forged",
        position,
        describe: (n) =>
          linked
            ? `${n.record(fields.instance, seq)} (${at(position)}): edited (${what})`
            : `${n.record(fields.instance, seq)} (${
              at(position)
            }): forged (${what}, and it does not link to the record before it)`,
      });
    }

    if (fields.format !== chain.format) {
      this.#find({
        index,
        kind: "forged",
        position,
        describe: (n) =>
          `${n.record(fields.instance, seq)} (${at(position)}): forged (chain format ${fields.format} in a chain ` +
          `of format ${chain.format}; one Nexus process writes one format)`,
      });
    }

    if (chain.after === "stop") {
      const stop = chain.last;
      this.#find({
        index,
        kind: "forged",
        position,
        describe: (n) =>
          `${n.record(fields.instance, seq)} (${at(position)}): forged (it follows the chain's stop record, ` +
          `${at(stop)})`,
      });
    }

    if (seq < chain.next) {
      this.#earlier(chain, record, position, index);
      return;
    }
    if (seq > chain.next) {
      this.#gap(chain, seq, position, index);
    } else if (fields.prev !== chain.link) {
      // In order, but not linked to what came before it. When this record is
      // sound, the one before it is what changed (a check without the key
      // sees edits only this way).
      const previous = { seq: chain.lastSeq, position: chain.last };
      if (macOk && chain.lastTrusted) {
        this.#find({
          index: chain.lastIndex,
          kind: "edited",
          position: previous.position,
          describe: (n) =>
            `${n.record(fields.instance, previous.seq)} (${at(previous.position)}): edited ` +
            `(the link in the next record, ${at(position)}, does not match it)`,
        });
      } else if (macOk) {
        this.#find({
          index,
          kind: "forged",
          position,
          describe: (n) =>
            `${n.record(fields.instance, seq)} (${at(position)}): forged (it does not link to the record before it)`,
        });
      }
    }

    if (fields.keyVersion === null && chain.keyed) {
      this.#find({
        index,
        kind: "forged",
        position,
        describe: (n) =>
          `${n.record(fields.instance, seq)} (${
            at(position)
          }): forged (a record without a key after the chain was keyed)`,
      });
    }
    if (chain.after === "reopen" && record.event !== "segment") {
      this.#find({
        index,
        kind: "forged",
        position,
        describe: (n) =>
          `${n.record(fields.instance, seq)} (${at(position)}): forged (after a reopen record the chain must ` +
          `continue with a segment record)`,
      });
    }
    if (record.type === CHAIN_RECORD && record.event === "start") {
      this.#find({
        index,
        kind: "forged",
        position,
        describe: (n) =>
          `${n.record(fields.instance, seq)} (${at(position)}): forged (a second start record for this instance)`,
      });
    }
    this.#advance(chain, record, line, position, index, macOk);
  }

  /** Ends the input: pending gaps become missing records; returns the report. */
  finish(): VerifyReport {
    for (const chain of this.#chains.values()) {
      for (const gap of chain.gaps) {
        this.#find({
          index: gap.index,
          kind: "missing",
          position: gap.at,
          describe: (n) =>
            `missing ${range(gap.from, gap.to)}${n.of(chain.instance)} (between ${at(gap.before)} and ${at(gap.at)})`,
        });
      }
      chain.gaps.length = 0;
    }
    const many = this.#chains.size > 1;
    const names: Names = {
      record: (instance, seq) => `record ${seq}${names.of(instance)}`,
      of: (instance) => many ? ` of instance ${short(instance)}` : "",
    };
    const notes = [...this.#notes];
    for (const chain of this.#chains.values()) {
      const who = many ? `instance ${short(chain.instance)}` : "the chain";
      for (const [sink, declared] of chain.declared) {
        notes.push(
          `${who}: Nexus declared ${declared.count} record(s) unwritten to its ${sink} ` +
            `(last error: ${declared.error}); they are not counted as missing`,
        );
      }
      if (chain.unkeyedTail) {
        notes.push(
          `${who}: ${range(chain.unkeyedTail.from, chain.unkeyedTail.to)} were written before the root key ` +
            "was loaded and no keyed record follows them: only plain SHA-256 links protect them",
        );
      }
      if (chain.after !== "stop" && chain.after !== "reopen") {
        notes.push(
          `${who}: ends at record ${chain.lastSeq} (${at(chain.last)}) without a stop record: ` +
            "that Nexus was still running, it crashed, or records at the end were removed",
        );
      }
    }
    const segments = [...this.#chains.values()].reduce((sum, chain) => sum + chain.segments.size, 0);
    const base = { records: this.#records, segments, instances: this.#chains.size, notes };
    if (!this.#earliest) return { ok: true, ...base };
    const finding = this.#earliest;
    return {
      ok: false,
      ...base,
      finding: { kind: finding.kind, position: finding.position, message: finding.describe(names) },
    };
  }

  #open(record: ChainedRecord, position: Position, index: number, macOk: boolean): Chain {
    const fields = record.chain;
    const isStart = record.type === CHAIN_RECORD && record.event === "start";
    const chain: Chain = {
      instance: fields.instance,
      format: fields.format,
      next: fields.seq,
      link: fields.prev ?? "",
      last: position,
      lastSeq: fields.seq - 1,
      lastIndex: index,
      lastTrusted: true,
      keyed: false,
      after: undefined,
      gaps: [],
      segments: new Set(),
      unkeyedTail: undefined,
      declared: new Map(),
    };
    this.#chains.set(fields.instance, chain);
    const who = `instance ${short(fields.instance)}`;
    if (isStart && (fields.seq !== 1 || fields.prev !== null)) {
      this.#find({
        index,
        kind: "forged",
        position,
        describe: (n) =>
          `${n.record(fields.instance, fields.seq)} (${at(position)}): forged (a start record must be record 1)`,
      });
    } else if (!isStart && record.event === "segment" && fields.prev !== null) {
      this.#notes.push(
        `${who}: the input starts at record ${fields.seq} (${at(position)}), the first of segment ` +
          `${fields.segment}; the records before it are in an earlier file that was not given`,
      );
    } else if (!isStart && this.#partial) {
      this.#notes.push(`${who}: the input starts at record ${fields.seq} (${at(position)}) (--partial)`);
    } else if (!isStart) {
      this.#find({
        index,
        kind: "missing",
        position,
        describe: (n) =>
          `missing records before ${n.record(fields.instance, fields.seq)} (${at(position)}): the chain starts ` +
          "there without its start or segment record (give the earlier files too, or --partial for an excerpt)",
      });
    }
    if (!macOk) {
      const what = fields.keyVersion === null ? "its SHA-256 does not match" : "MAC mismatch";
      this.#find({
        index,
        kind: "edited",
        position,
        describe: (n) => `${n.record(fields.instance, fields.seq)} (${at(position)}): edited (${what})`,
      });
    }
    return chain;
  }

  #advance(
    chain: Chain,
    record: ChainedRecord,
    line: string,
    position: Position,
    index: number,
    macOk: boolean,
  ): void {
    const fields = record.chain;
    chain.next = fields.seq + 1;
    chain.link = linkAfter(record, line);
    chain.last = position;
    chain.lastSeq = fields.seq;
    chain.lastIndex = index;
    chain.lastTrusted = macOk;
    chain.segments.add(fields.segment);
    if (fields.keyVersion === null) {
      chain.unkeyedTail = { from: chain.unkeyedTail?.from ?? fields.seq, to: fields.seq };
    } else {
      chain.keyed = true;
      chain.unkeyedTail = undefined;
    }
    if (record.type !== CHAIN_RECORD) {
      if (chain.after === "reopen") chain.after = undefined;
      return;
    }
    switch (record.event) {
      case "reopen":
        chain.after = "reopen";
        break;
      case "stop":
        chain.after = "stop";
        break;
      case "segment":
        chain.after = undefined;
        break;
      case "lost":
        if (macOk) this.#declareLost(chain, record);
        break;
    }
  }

  /** Records that `chain.next..seq-1` did not come (yet). */
  #gap(chain: Chain, seq: number, position: Position, index: number): void {
    chain.gaps.push({
      from: chain.next,
      to: seq - 1,
      index,
      at: position,
      atSeq: seq,
      before: chain.last,
    });
    this.#pendingGaps++;
    if (this.#pendingGaps > this.#maxGaps) {
      // Too many open questions: judge the oldest now (as missing), so memory stays bounded.
      const oldest = [...this.#chains.values()].flatMap((c) => c.gaps.map((g) => ({ c, g })))
        .sort((a, b) => a.g.index - b.g.index)[0]!;
      oldest.c.gaps.splice(oldest.c.gaps.indexOf(oldest.g), 1);
      this.#pendingGaps--;
      this.#find({
        index: oldest.g.index,
        kind: "missing",
        position: oldest.g.at,
        describe: (n) =>
          `missing ${range(oldest.g.from, oldest.g.to)}${n.of(oldest.c.instance)} ` +
          `(between ${at(oldest.g.before)} and ${at(oldest.g.at)})`,
      });
    }
  }

  /** A record older than the chain's position: a reordered one when a gap awaits it, else a copy. */
  #earlier(chain: Chain, record: ChainedRecord, position: Position, index: number): void {
    const seq = record.chain.seq;
    const gap = chain.gaps.find((g) => seq >= g.from && seq <= g.to);
    if (gap) {
      this.#fill(chain, gap, seq);
      this.#find({
        index: gap.index,
        kind: "reordered",
        position: gap.at,
        describe: (n) =>
          `${n.record(chain.instance, gap.atSeq)} (${at(gap.at)}): reordered (record ${seq} comes after it, ${
            at(position)
          })`,
      });
      return;
    }
    this.#find({
      index,
      kind: "duplicated",
      position,
      describe: (n) =>
        `${n.record(chain.instance, seq)} (${at(position)}): duplicated (the chain had already passed record ${seq})`,
    });
  }

  #fill(chain: Chain, gap: Gap, seq: number): void {
    if (gap.from === gap.to) {
      chain.gaps.splice(chain.gaps.indexOf(gap), 1);
      this.#pendingGaps--;
    } else if (seq === gap.from) gap.from++;
    else if (seq === gap.to) gap.to--;
    else {
      chain.gaps.push({ ...gap, from: seq + 1 });
      gap.to = seq - 1;
      this.#pendingGaps++;
    }
  }

  /** Takes `from..to` out of the chain's pending gaps. */
  #excuse(chain: Chain, from: number, to: number): void {
    for (const gap of [...chain.gaps]) {
      if (to < gap.from || from > gap.to) continue;
      const kept = [
        ...(gap.from < from ? [{ from: gap.from, to: from - 1 }] : []),
        ...(gap.to > to ? [{ from: to + 1, to: gap.to }] : []),
      ];
      chain.gaps.splice(chain.gaps.indexOf(gap), 1, ...kept.map((part) => ({ ...gap, ...part })));
      this.#pendingGaps += kept.length - 1;
    }
  }

  #declareLost(chain: Chain, record: ChainedRecord): void {
    const sink = typeof record.fields.sink === "string" ? record.fields.sink : "output";
    const error = typeof record.fields.error === "string" ? record.fields.error : "unknown";
    const seqs = Array.isArray(record.fields.seqs) ? record.fields.seqs : [];
    let count = 0;
    for (const item of seqs) {
      if (!Array.isArray(item) || item.length !== 2) continue;
      const [from, to] = item;
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from > to || to >= record.chain.seq) continue;
      count += to - from + 1;
      this.#excuse(chain, from, to);
    }
    const previous = chain.declared.get(sink);
    chain.declared.set(sink, { count: (previous?.count ?? 0) + count, error });
  }

  #find(pending: Pending): void {
    if (!this.#earliest || pending.index < this.#earliest.index) this.#earliest = pending;
  }
}

function at(position: Position): string {
  return `line ${position.line} of ${position.source}`;
}

function range(from: number, to: number): string {
  return from === to ? `record ${from}` : `records ${from}..${to}`;
}

function short(instance: string): string {
  return instance.slice(0, 8);
}
