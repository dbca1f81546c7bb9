/**
 * PEM <-> DER conversion, and splitting of concatenated DER (the Workload
 * API's certificate fields).
 *
 * The functions work on bytes end to end, so a private key converted here
 * never becomes an immutable JS string that could not be zeroed afterwards
 * (the `string` overloads are for certificates and other public data).
 *
 * @module
 */

/** Malformed PEM or DER input. Messages never quote the input bytes. */
export class PemError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PemError";
  }
}

/** One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, …) and DER body. */
export interface PemBlock {
  /** The text between `-----BEGIN ` and `-----`. */
  readonly label: string;
  /** The decoded body. */
  readonly der: Uint8Array;
}

const BEGIN = bytesOf("-----BEGIN ");
const END = bytesOf("-----END ");
const DASHES = bytesOf("-----");
const LINE_WIDTH = 64;
const ALPHABET = bytesOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const PAD = 0x3d; // "="
/** Decoding table: 0..63 for alphabet bytes, 64 for whitespace, 255 otherwise. */
const DECODE = (() => {
  const table = new Uint8Array(256).fill(255);
  ALPHABET.forEach((c, i) => table[c] = i);
  for (const ws of [0x20, 0x09, 0x0a, 0x0d]) table[ws] = 64;
  return table;
})();

/**
 * Every PEM block in `pem`, in order. Text outside blocks (comments such as
 * OpenSSL's "Bag Attributes") is ignored.
 *
 * @throws {PemError} on a block without its END line, a mismatched END
 *   label, or a body that is not valid base64.
 */
export function parsePemBlocks(pem: string | Uint8Array): PemBlock[] {
  const bytes = typeof pem === "string" ? bytesOf(pem) : pem;
  const blocks: PemBlock[] = [];
  let pos = 0;
  // Each iteration consumes one block, so the loop is bounded by the input size.
  while (pos < bytes.length) {
    const begin = indexOf(bytes, BEGIN, pos);
    if (begin === -1) break;
    const labelStart = begin + BEGIN.length;
    const labelEnd = indexOf(bytes, DASHES, labelStart);
    if (labelEnd === -1) throw new PemError("PEM BEGIN line is not terminated");
    const label = textOf(bytes.subarray(labelStart, labelEnd));
    const bodyStart = labelEnd + DASHES.length;
    const end = indexOf(bytes, END, bodyStart);
    if (end === -1) throw new PemError(`PEM block ${JSON.stringify(label)} has no END line`);
    const endLabelStart = end + END.length;
    const endLabelEnd = indexOf(bytes, DASHES, endLabelStart);
    if (endLabelEnd === -1 || textOf(bytes.subarray(endLabelStart, endLabelEnd)) !== label) {
      throw new PemError(`PEM block ${JSON.stringify(label)} has a mismatched END line`);
    }
    blocks.push({ label, der: decodeBase64(bytes.subarray(bodyStart, end), label) });
    pos = endLabelEnd + DASHES.length;
  }
  return blocks;
}

/**
 * The DER bodies of the PEM blocks in `pem`; with `label`, only the blocks
 * carrying that label (so a key file's stray certificate is skipped).
 *
 * @throws {PemError} when the PEM is malformed (see {@linkcode parsePemBlocks}).
 */
export function pemToDerList(pem: string | Uint8Array, label?: string): Uint8Array[] {
  return parsePemBlocks(pem).filter((b) => label === undefined || b.label === label).map((b) => b.der);
}

/** PEM text with one `label` block per DER value (64-column base64). */
export function derListToPem(ders: readonly Uint8Array[], label: string): string {
  return textOf(derListToPemBytes(ders, label));
}

/**
 * Like {@linkcode derListToPem} but returns bytes, for private keys: the
 * result can be zeroed, which a string cannot.
 */
export function derListToPemBytes(ders: readonly Uint8Array[], label: string): Uint8Array {
  if (!/^[\x21-\x2c\x2e-\x7e]+(?:[- ][\x21-\x2c\x2e-\x7e]+)*$/.test(label)) {
    throw new PemError(`invalid PEM label ${JSON.stringify(label)}`);
  }
  const head = bytesOf(`-----BEGIN ${label}-----\n`);
  const tail = bytesOf(`-----END ${label}-----\n`);
  let size = 0;
  for (const der of ders) {
    const chars = Math.ceil(der.length / 3) * 4;
    size += head.length + chars + Math.ceil(chars / LINE_WIDTH) + tail.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const der of ders) {
    out.set(head, at);
    at += head.length;
    at = encodeBase64Lines(der, out, at);
    out.set(tail, at);
    at += tail.length;
  }
  return out;
}

/**
 * Splits concatenated DER values (`SEQUENCE || SEQUENCE || …`), as the
 * Workload API sends certificate chains and bundles. Returns views into
 * `bytes`, not copies.
 *
 * @throws {PemError} when an element is truncated, uses the indefinite
 *   length form (not DER), or is not a SEQUENCE.
 */
export function splitConcatenatedDer(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes[pos] !== 0x30) throw new PemError(`DER element at offset ${pos} is not a SEQUENCE`);
    const first = bytes[pos + 1];
    if (first === undefined) throw new PemError(`DER element at offset ${pos} is truncated`);
    let length: number;
    let header: number;
    if (first < 0x80) {
      length = first;
      header = 2;
    } else {
      const count = first & 0x7f;
      // 0 would be the BER indefinite form; more than 4 bytes cannot be a real certificate.
      if (count === 0 || count > 4) throw new PemError(`DER element at offset ${pos} has an invalid length`);
      if (pos + 2 + count > bytes.length) throw new PemError(`DER element at offset ${pos} is truncated`);
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + bytes[pos + 2 + i]!;
      header = 2 + count;
    }
    const end = pos + header + length;
    if (end > bytes.length) throw new PemError(`DER element at offset ${pos} is truncated`);
    out.push(bytes.subarray(pos, end));
    pos = end;
  }
  return out;
}

/** The concatenation of `parts` (for building Workload API DER fields). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function decodeBase64(body: Uint8Array, label: string): Uint8Array {
  const sextets = new Uint8Array(body.length);
  let n = 0;
  let padding = 0;
  for (const c of body) {
    if (c === PAD) {
      padding++;
      continue;
    }
    const v = DECODE[c]!;
    if (v === 64) continue;
    // Data after padding, or a byte outside the alphabet.
    if (v === 255 || padding > 0) throw new PemError(`PEM block ${JSON.stringify(label)} has invalid base64`);
    sextets[n++] = v;
  }
  if (padding > 2 || (n + padding) % 4 !== 0 || n % 4 === 1) {
    sextets.fill(0);
    throw new PemError(`PEM block ${JSON.stringify(label)} has invalid base64 length`);
  }
  const out = new Uint8Array(Math.floor((n * 3) / 4));
  let o = 0;
  for (let i = 0; i < n; i += 4) {
    const a = sextets[i]!, b = sextets[i + 1]!, c = sextets[i + 2] ?? 0, d = sextets[i + 3] ?? 0;
    const word = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = word >>> 16;
    if (i + 2 < n) out[o++] = (word >>> 8) & 0xff;
    if (i + 3 < n) out[o++] = word & 0xff;
  }
  // The scratch copy held the (possibly secret) body too.
  sextets.fill(0);
  return out;
}

function encodeBase64Lines(der: Uint8Array, out: Uint8Array, start: number): number {
  let at = start;
  let column = 0;
  const put = (c: number) => {
    out[at++] = c;
    if (++column === LINE_WIDTH) {
      out[at++] = 0x0a;
      column = 0;
    }
  };
  for (let i = 0; i < der.length; i += 3) {
    const rest = der.length - i;
    const word = (der[i]! << 16) | ((der[i + 1] ?? 0) << 8) | (der[i + 2] ?? 0);
    put(ALPHABET[(word >>> 18) & 63]!);
    put(ALPHABET[(word >>> 12) & 63]!);
    put(rest > 1 ? ALPHABET[(word >>> 6) & 63]! : PAD);
    put(rest > 2 ? ALPHABET[word & 63]! : PAD);
  }
  if (column !== 0) out[at++] = 0x0a;
  return at;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const last = haystack.length - needle.length;
  outer: for (let i = from; i <= last; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

function bytesOf(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function textOf(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
