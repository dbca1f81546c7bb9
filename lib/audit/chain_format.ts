/**
 * The line format of the tamper-evident audit chain, shared by Nexus (which
 * writes it) and `spike audit verify` (which checks it). Pure: no IO.
 *
 * A chained record is one JSON object on one line. Nexus builds the object
 * with its fields in a fixed order, appends the chain fields (`instance`,
 * `segment`, `seq`, `keyVersion`, `prev`), serializes it once, and computes
 * `mac` over exactly those UTF-8 bytes; the line is that serialization with
 * `,"mac":"<64 hex>"` put before the closing brace. A verifier therefore
 * never re-serializes anything: it cuts the fixed-length suffix off, puts
 * the brace back, and checks the very bytes Nexus wrote.
 *
 * `mac` is HMAC-SHA-256 under the audit key of version `keyVersion`, or,
 * for a record written before any key existed (`keyVersion: null`), plain
 * SHA-256 of the same bytes (which catches accidents, not forgers). `prev`
 * is the SHA-256 of the previous line of the chain as written (`null` for
 * the first record of an instance), so a record's MAC covers its
 * predecessor's content and MAC, and a check without the key still sees
 * edits, deletions and reordering made by anyone who does not rewrite every
 * later line.
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

/** The chain fields every chained record carries, in this order, before `mac`. */
export interface ChainFields {
  /** Random id of the Nexus process that wrote the chain (one chain per process). */
  readonly instance: string;
  /** Counts reopens of the output (log rotation): 0 for the first file. */
  readonly segment: number;
  /** Position in the instance's chain, from 1, never reused. */
  readonly seq: number;
  /** Version of the audit key behind `mac`; `null` for a record written before the key was loaded. */
  readonly keyVersion: number | null;
  /** SHA-256 (hex) of the previous line of the chain; `null` for the first record of an instance. */
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
 * caller zeroes `raw`). Each use clones the precomputed state, so signing
 * costs two hash compressions plus the message.
 */
export function createAuditMacKey(version: number, raw: Uint8Array): AuditMacKey {
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError("audit key version must be ≥ 1");
  if (raw.length !== 32) throw new RangeError("audit key must be 32 bytes");
  const base = hmac.create(sha256, raw);
  let destroyed = false;
  const digest = (signed: Uint8Array) => {
    if (destroyed) throw new Error("audit key was destroyed");
    return base.clone().update(signed).digest();
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
    },
  };
}

/** SHA-256 (hex) of `text` as UTF-8. */
export function sha256Hex(text: string | Uint8Array): string {
  return bytesToHex(sha256(typeof text === "string" ? encoder.encode(text) : text));
}

/** The link the next record's `prev` holds: SHA-256 of this line as written (no newline). */
export function linkOf(line: string): string {
  return sha256Hex(line);
}

/**
 * Serializes `fields` (their own order) followed by `chain`, and returns the
 * finished line (no newline): `mac` under `key`, or plain SHA-256 when
 * `key` is undefined (then `chain.keyVersion` must be `null`).
 */
export function sealLine(fields: object, chain: ChainFields, key?: AuditMacKey): string {
  if ((key?.version ?? null) !== chain.keyVersion) throw new Error("keyVersion does not match the key");
  const signed = JSON.stringify({
    ...fields,
    instance: chain.instance,
    segment: chain.segment,
    seq: chain.seq,
    keyVersion: chain.keyVersion,
    prev: chain.prev,
  });
  const bytes = encoder.encode(signed);
  const mac = key ? key.sign(bytes) : sha256Hex(bytes);
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
  const { instance, segment, seq, keyVersion, prev, type, event } = fields;
  if (typeof type !== "string") return 'it has no "type"';
  if (typeof instance !== "string" || instance.length === 0 || instance.length > 100) return 'bad "instance"';
  if (!isCount(segment, 0)) return 'bad "segment"';
  if (!isCount(seq, 1)) return 'bad "seq"';
  if (keyVersion !== null && !isCount(keyVersion, 1)) return 'bad "keyVersion"';
  if (prev !== null && (typeof prev !== "string" || !HEX64.test(prev))) return 'bad "prev"';
  if (event !== undefined && typeof event !== "string") return 'bad "event"';
  return {
    fields,
    chain: { instance, segment: segment as number, seq: seq as number, keyVersion: keyVersion as number | null, prev },
    type,
    event: event as string | undefined,
    signed: split.signed,
    mac: split.mac,
  };
}

/** Whether `signed` hashes to `mac` (the check of a record written without a key). */
export function unkeyedMacMatches(record: Pick<ChainedRecord, "signed" | "mac">): boolean {
  if (!HEX64.test(record.mac)) return false;
  return constantTimeEqual(sha256(encoder.encode(record.signed)), hexToBytes(record.mac));
}

/** The UTF-8 bytes a record's MAC covers. */
export function signedBytes(record: Pick<ChainedRecord, "signed">): Uint8Array {
  return encoder.encode(record.signed);
}

function isCount(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}
