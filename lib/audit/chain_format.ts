/**
 * The line format of the tamper-evident audit chain, shared by Nexus (which
 * writes it) and `spike audit verify` (which checks it). Pure: no IO.
 *
 * A chained record is one JSON object on one line. Nexus builds the object
 * with its fields in a fixed order, appends the chain fields (`format`,
 * `instance`, `segment`, `seq`, `keyVersion`, `prev`), serializes it once,
 * and computes `mac` from exactly those UTF-8 bytes; the line is that
 * serialization with `,"mac":"<64 hex>"` put before the closing brace. A
 * verifier therefore never re-serializes anything: it cuts the fixed-length
 * suffix off, puts the brace back, and checks the very bytes Nexus wrote.
 *
 * Two formats exist; a record names its own in `format` (absent: 1), and
 * one instance's chain never changes format.
 *
 * - **Format 2** (what Nexus writes): the record's digest is SHA-256 of the
 *   signed bytes; `mac` is HMAC-SHA-256 of that digest under the audit key
 *   of version `keyVersion`, or the digest itself for a record written
 *   before any key existed (`keyVersion: null`; it catches accidents, not
 *   forgers); the next record's `prev` is the digest. The bytes are hashed
 *   once: about half of format 1's hashing per record.
 * - **Format 1** (written before format 2; still verified): `mac` is
 *   HMAC-SHA-256 of the signed bytes, or their SHA-256 when unkeyed; `prev`
 *   is SHA-256 of the whole previous line, `mac` included.
 *
 * Either way `prev` commits to everything the previous record says, and
 * each MAC covers `prev`, so one MAC vouches for the chain before it; and a
 * check without the key, recomputing plain SHA-256, still sees edits,
 * deletions and reordering made by anyone who does not rewrite every later
 * line. (Format 2's link leaves the previous `mac` out: a `mac` changed on
 * its own fails that record's MAC check, and without the key no check can
 * judge a keyed MAC anyway.)
 *
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { constantTimeEqual } from "../crypto/constant_time.ts";

/** The record `type` of one request's outcome. */
export const REQUEST_RECORD = "audit";
/** The record `type` written before a request changes state (fail-closed or audit table mode). */
export const INTENT_RECORD = "audit-intent";
/** The record `type` of the chain's own events (start, key, segment, reopen, lost, stop). */
export const CHAIN_RECORD = "audit-chain";

/** Events of `audit-chain` records. */
export type ChainEvent = "start" | "key" | "reopen" | "segment" | "lost" | "stop";

/** The chain format Nexus writes. */
export const CHAIN_FORMAT = 2;

/** Chain formats a verifier knows (see the module's documentation). */
export type ChainFormat = 1 | 2;

/**
 * The chain fields every chained record carries, in this order, before
 * `mac`; `format` is written only when it is 2.
 */
export interface ChainFields {
  /** How `mac` and the next record's `prev` are computed. */
  readonly format: ChainFormat;
  /** Random id of the Nexus process that wrote the chain (one chain per process). */
  readonly instance: string;
  /** Counts reopens of the output (log rotation): 0 for the first file. */
  readonly segment: number;
  /** Position in the instance's chain, from 1, never reused. */
  readonly seq: number;
  /** Version of the audit key behind `mac`; `null` for a record written before the key was loaded. */
  readonly keyVersion: number | null;
  /** The previous record's link (format 2: its digest; format 1: SHA-256 of its line); `null` for an instance's first record. */
  readonly prev: string | null;
}

/** A MAC key for the chain: HMAC-SHA-256 under one version of the audit key. */
export interface AuditMacKey {
  /** The key version records name in `keyVersion`. */
  readonly version: number;
  /** Hex HMAC of `signed`. */
  sign(signed: Uint8Array): string;
  /** Whether `macHex` is the HMAC of `signed` (compared in constant time). */
  verify(signed: Uint8Array, macHex: string): boolean;
  /** Wipes the key state; the key cannot be used afterwards. */
  destroy(): void;
}

const encoder = new TextEncoder();
const MAC_PREFIX = ',"mac":"';
const MAC_HEX_LENGTH = 64;
/** `,"mac":"` + 64 hex + `"}`. */
const SUFFIX_LENGTH = MAC_PREFIX.length + MAC_HEX_LENGTH + 2;
const HEX64 = /^[0-9a-f]{64}$/;

/** The longest line a verifier accepts as a record (Nexus's lines are far shorter). */
export const MAX_RECORD_LINE = 65_536;

/**
 * A MAC key over `raw` (32 bytes, copied into HMAC's precomputed state; the
 * caller zeroes `raw`). Each use starts from the precomputed state, so
 * signing costs two hash compressions plus the message.
 */
export function createAuditMacKey(version: number, raw: Uint8Array): AuditMacKey {
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError("audit key version must be ≥ 1");
  if (raw.length !== 32) throw new RangeError("audit key must be 32 bytes");
  const base = hmac.create(sha256, raw);
  // Each use copies the precomputed state into this one instance instead of
  // a fresh clone: two hash objects fewer per record (~2 % of a secret
  // read's CPU). Its digest wipes the copied state again.
  const scratch = base.clone();
  const mac = new Uint8Array(32);
  let destroyed = false;
  const digest = (signed: Uint8Array) => {
    if (destroyed) throw new Error("audit key was destroyed");
    base._cloneInto(scratch).update(signed).digestInto(mac);
    return mac;
  };
  return {
    version,
    sign: (signed) => bytesToHex(digest(signed)),
    verify(signed, macHex) {
      if (!HEX64.test(macHex)) return false;
      return constantTimeEqual(digest(signed), hexToBytes(macHex));
    },
    destroy() {
      destroyed = true;
      base.destroy();
      scratch.destroy();
      mac.fill(0);
    },
  };
}

/** SHA-256 (hex) of `text` as UTF-8. */
export function sha256Hex(text: string | Uint8Array): string {
  return bytesToHex(sha256(typeof text === "string" ? encoder.encode(text) : text));
}

/**
 * The link the next record's `prev` holds after `line` (as written, no
 * newline); throws when `line` is not a chained record.
 */
export function linkOf(line: string): string {
  const record = parseChainedLine(line);
  if (typeof record === "string") throw new TypeError(`not a chained record: ${record}`);
  return linkAfter(record, line);
}

/** The link the next record's `prev` holds after `record`, parsed from `line`. */
export function linkAfter(record: Pick<ChainedRecord, "digest">, line: string): string {
  return record.digest ? bytesToHex(record.digest) : sha256Hex(line);
}

/**
 * SHA-256 with its state kept between uses: a sealer that hashes a record
 * at a time allocates no hash objects (with the MAC key's reuse, ~4 % of a
 * secret read's CPU). Not for concurrent use; JavaScript never interleaves
 * two calls.
 */
export interface RecordHasher {
  /** SHA-256 of `bytes`, in a new array. */
  digest(bytes: Uint8Array): Uint8Array;
}

/** A {@linkcode RecordHasher}; a sealer keeps one for its life. */
export function createRecordHasher(): RecordHasher {
  const blank = sha256.create();
  const scratch = sha256.create();
  return {
    digest(bytes) {
      const out = new Uint8Array(32);
      blank._cloneInto(scratch).update(bytes).digestInto(out);
      return out;
    },
  };
}

/** A finished line and the link the next record of its chain carries in `prev`. */
export interface SealedLine {
  /** The line, no newline. */
  readonly line: string;
  /** The next record's `prev`. */
  readonly link: string;
}

/**
 * Serializes `fields` (their own order) followed by `chain`, and returns the
 * finished line (no newline) with its link: `mac` under `key`, or the
 * unkeyed form when `key` is undefined (then `chain.keyVersion` must be
 * `null`). A sealer of many records passes its own `hasher`.
 */
export function sealRecord(
  fields: object,
  chain: ChainFields,
  key?: AuditMacKey,
  hasher: RecordHasher = createRecordHasher(),
): SealedLine {
  if ((key?.version ?? null) !== chain.keyVersion) throw new Error("keyVersion does not match the key");
  const { format, instance, segment, seq, keyVersion, prev } = chain;
  if (format === 2) {
    const signed = JSON.stringify({ ...fields, format, instance, segment, seq, keyVersion, prev });
    const digest = hasher.digest(encoder.encode(signed));
    const link = bytesToHex(digest);
    const mac = key ? key.sign(digest) : link;
    return { line: withMac(signed, mac), link };
  }
  if (format !== 1) throw new RangeError(`unknown chain format ${String(format)}`);
  // Format 1 has no such field: one among the fields would make the record read as another format.
  if (Object.hasOwn(fields, "format")) throw new Error('a format 1 record cannot carry a "format" field');
  const signed = JSON.stringify({ ...fields, instance, segment, seq, keyVersion, prev });
  const bytes = encoder.encode(signed);
  const line = withMac(signed, key ? key.sign(bytes) : sha256Hex(bytes));
  return { line, link: sha256Hex(line) };
}

/** {@linkcode sealRecord}'s line alone. */
export function sealLine(fields: object, chain: ChainFields, key?: AuditMacKey): string {
  return sealRecord(fields, chain, key).line;
}

function withMac(signed: string, mac: string): string {
  return `${signed.slice(0, -1)}${MAC_PREFIX}${mac}"}`;
}

/** A line cut into the bytes its MAC covers and the MAC. */
export interface SplitLine {
  /** The serialization the MAC covers (the line without its `mac` field). */
  readonly signed: string;
  /** The hex MAC. */
  readonly mac: string;
}

/** Cuts a line into signed text and MAC; `undefined` when it does not end like a chained record. */
export function splitLine(line: string): SplitLine | undefined {
  if (line.length < SUFFIX_LENGTH + 2 || line.length > MAX_RECORD_LINE || !line.endsWith('"}')) return undefined;
  const start = line.length - SUFFIX_LENGTH;
  if (line.slice(start, start + MAC_PREFIX.length) !== MAC_PREFIX) return undefined;
  const mac = line.slice(start + MAC_PREFIX.length, line.length - 2);
  if (!HEX64.test(mac)) return undefined;
  return { signed: `${line.slice(0, start)}}`, mac };
}

/** A parsed chained record: its fields (`mac` excluded), chain position and MAC. */
export interface ChainedRecord {
  /** Every field as written but `mac`. */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The chain fields, checked for type. */
  readonly chain: ChainFields;
  /** `fields.type`. */
  readonly type: string;
  /** `fields.event` of an `audit-chain` record. */
  readonly event: string | undefined;
  /** The signed text (what `mac` covers). */
  readonly signed: string;
  /** The hex MAC. */
  readonly mac: string;
  /** Format 2: SHA-256 of `signed` (what the MAC covers, and the next link); format 1: absent. */
  readonly digest: Uint8Array | undefined;
}

/** Parses one line; a string says why it is not a chained record. */
export function parseChainedLine(line: string): ChainedRecord | string {
  if (line.length > MAX_RECORD_LINE) return `longer than ${MAX_RECORD_LINE} characters`;
  const split = splitLine(line);
  if (!split) return 'it does not end with a "mac" field';
  let value: unknown;
  try {
    value = JSON.parse(split.signed);
  } catch {
    return "it is not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "it is not a JSON object";
  const fields = value as Record<string, unknown>;
  const { format = 1, instance, segment, seq, keyVersion, prev, type, event } = fields;
  if (typeof type !== "string") return 'it has no "type"';
  if (format !== 1 && format !== 2) return 'bad "format"';
  // Format 1 has no field: a record that names it is not one Nexus wrote.
  if (format === 1 && Object.hasOwn(fields, "format")) return 'bad "format"';
  if (typeof instance !== "string" || instance.length === 0 || instance.length > 100) return 'bad "instance"';
  if (!isCount(segment, 0)) return 'bad "segment"';
  if (!isCount(seq, 1)) return 'bad "seq"';
  if (keyVersion !== null && !isCount(keyVersion, 1)) return 'bad "keyVersion"';
  if (prev !== null && (typeof prev !== "string" || !HEX64.test(prev))) return 'bad "prev"';
  if (event !== undefined && typeof event !== "string") return 'bad "event"';
  return {
    fields,
    chain: {
      format,
      instance,
      segment: segment as number,
      seq: seq as number,
      keyVersion: keyVersion as number | null,
      prev,
    },
    type,
    event: event as string | undefined,
    signed: split.signed,
    mac: split.mac,
    digest: format === 2 ? sha256(encoder.encode(split.signed)) : undefined,
  };
}

/**
 * Whether a record written without a key carries the right `mac`: SHA-256
 * of its signed bytes, in either format.
 */
export function unkeyedMacMatches(record: Pick<ChainedRecord, "signed" | "mac" | "digest">): boolean {
  if (!HEX64.test(record.mac)) return false;
  return constantTimeEqual(record.digest ?? sha256(encoder.encode(record.signed)), hexToBytes(record.mac));
}

/** Whether `key` made a keyed record's `mac` (compared in constant time), as its format says. */
export function macMatches(key: AuditMacKey, record: Pick<ChainedRecord, "signed" | "mac" | "digest">): boolean {
  return key.verify(record.digest ?? encoder.encode(record.signed), record.mac);
}

function isCount(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}
