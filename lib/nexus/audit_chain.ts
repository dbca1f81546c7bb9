/**
 * The chain state of one Nexus process: its instance id, the segment (how
 * often the output was reopened), the next sequence number, the link to the
 * last line, and the audit key records are signed with (none until the root
 * key is loaded). `seal` turns a record's fields into its finished line and
 * advances the chain; callers write lines in the order they were sealed.
 *
 * A sequence number is used up when a record is sealed, whether or not an
 * output manages to store the line: an output that fails says so later in
 * a `lost` record (see `audit_trail.ts`), so a gap is never silent.
 *
 * @module
 */
import {
  type AuditMacKey,
  CHAIN_FORMAT,
  type ChainFields,
  createRecordHasher,
  sealRecord,
} from "../audit/chain_format.ts";

/** A sealed record: its chain position and the line to write. */
export interface SealedRecord {
  /** The chain fields it was sealed with. */
  readonly chain: ChainFields;
  /** The fields it was sealed from (without the chain fields). */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The finished line, no newline. */
  readonly line: string;
  /** Its MAC (hex), as in the line. */
  readonly mac: string;
}

/** One process's audit chain. */
export class AuditChain {
  /** This process's chain id. */
  readonly instance: string;
  #segment = 0;
  #seq = 0;
  #link: string | null = null;
  #key: AuditMacKey | undefined;
  readonly #hasher = createRecordHasher();

  /** Starts an empty chain (a random instance id unless one is given). */
  constructor(instance: string = crypto.randomUUID()) {
    this.instance = instance;
  }

  /** The current segment. */
  get segment(): number {
    return this.#segment;
  }

  /** The last sequence number used (0 before the first record). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** The version records are signed under now; `null` while unkeyed. */
  get keyVersion(): number | null {
    return this.#key?.version ?? null;
  }

  /**
   * Signs later records with `key` (this chain owns it from now on and
   * destroys the previous one). Resolves `false`, destroying `key`, when it
   * is the key already in use.
   */
  useKey(key: AuditMacKey): boolean {
    const current = this.#key;
    if (current && current.version === key.version && sameKey(current, key)) {
      key.destroy();
      return false;
    }
    current?.destroy();
    this.#key = key;
    return true;
  }

  /** Moves to the next segment (after the output was reopened). */
  nextSegment(): number {
    return ++this.#segment;
  }

  /** Seals `fields` as the next record of the chain. */
  seal(fields: object): SealedRecord {
    const chain: ChainFields = {
      format: CHAIN_FORMAT,
      instance: this.instance,
      segment: this.#segment,
      seq: this.#seq + 1,
      keyVersion: this.#key?.version ?? null,
      prev: this.#link,
    };
    const { line, link } = sealRecord(fields, chain, this.#key, this.#hasher);
    this.#seq = chain.seq;
    this.#link = link;
    return { chain, fields: fields as Readonly<Record<string, unknown>>, line, mac: line.slice(-66, -2) };
  }

  /** Destroys the key. */
  close(): void {
    this.#key?.destroy();
    this.#key = undefined;
  }
}

/** Whether two keys are the same, by their MAC of a fixed probe. */
function sameKey(a: AuditMacKey, b: AuditMacKey): boolean {
  const probe = new TextEncoder().encode("spike audit key probe");
  return b.verify(probe, a.sign(probe));
}
