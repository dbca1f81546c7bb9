/**
 * The fields of an X.509 certificate that SVID checks read — validity,
 * basic constraints, key usage and URI SANs — taken straight from its DER.
 *
 * A small, strict DER walker instead of a general ASN.1 library: the checks
 * run on every process start (our own SVID) and on every new peer, and a
 * full X.509 library costs more to load than everything else a CLI command
 * does. Signatures and public keys are `node:crypto`'s job
 * (`X509Certificate`); this module only reads the fields node does not
 * expose faithfully (it has no key-usage bits, and its SAN text escapes).
 *
 * Only DER is accepted (definite, minimal lengths; one-byte tags), as
 * RFC 5280 requires of certificates; anything else is a
 * {@linkcode CertificateFormatError}, never a guess.
 *
 * @module
 */

/** Key usage bits (RFC 5280 §4.2.1.3), as flags: bit n of the BIT STRING is `1 << n`. */
export const KeyUsage = Object.freeze({
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
});

/** What the SVID checks need from one certificate. */
export interface CertFields {
  /** Start of the validity period. */
  readonly notBefore: Date;
  /** End of the validity period. */
  readonly notAfter: Date;
  /** The basic constraints extension says `CA:TRUE`. */
  readonly isCa: boolean;
  /** {@linkcode KeyUsage} flags, or undefined when the extension is absent. */
  readonly keyUsage: number | undefined;
  /** Every `uniformResourceIdentifier` of the subject alternative names, in order. */
  readonly uriSans: readonly string[];
}

/** The bytes are not a DER X.509 certificate (or break a rule this reader checks). */
export class CertificateFormatError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CertificateFormatError";
  }
}

const TAG = Object.freeze({
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  version: 0xa0,
  issuerUniqueId: 0x81,
  subjectUniqueId: 0x82,
  extensions: 0xa3,
  uri: 0x86,
});

/** DER bodies of the extension OIDs read here (2.5.29.19, 2.5.29.15, 2.5.29.17). */
const OID = Object.freeze({
  basicConstraints: "551d13",
  keyUsage: "551d0f",
  subjectAltName: "551d11",
});

/** One DER element: its tag and where its content lies in the buffer. */
interface Element {
  readonly tag: number;
  /** First content byte. */
  readonly start: number;
  /** One past the last content byte (also where the next element starts). */
  readonly end: number;
}

/**
 * Reads the SVID-relevant fields of a DER certificate.
 *
 * @throws {CertificateFormatError} when `der` is not one DER certificate, or
 *   an extension read here is malformed or repeated.
 */
export function readCertFields(der: Uint8Array): CertFields {
  const cert = element(der, 0, der.length, "certificate");
  expectTag(cert, TAG.sequence, "certificate");
  if (cert.end !== der.length) throw new CertificateFormatError("bytes after the certificate");
  const tbs = element(der, cert.start, cert.end, "tbsCertificate");
  expectTag(tbs, TAG.sequence, "tbsCertificate");

  const fields = children(der, tbs);
  let at = 0;
  if (fields[at]?.tag === TAG.version) at++;
  for (const [tag, what] of [[TAG.integer, "serial number"], [TAG.sequence, "signature algorithm"]] as const) {
    expectTag(fields[at++], tag, what);
  }
  expectTag(fields[at++], TAG.sequence, "issuer");
  const validity = fields[at++];
  expectTag(validity, TAG.sequence, "validity");
  expectTag(fields[at++], TAG.sequence, "subject");
  expectTag(fields[at++], TAG.sequence, "subject public key info");
  if (fields[at]?.tag === TAG.issuerUniqueId) at++;
  if (fields[at]?.tag === TAG.subjectUniqueId) at++;
  let extensions: Element | undefined;
  if (fields[at]?.tag === TAG.extensions) extensions = fields[at++];
  if (at !== fields.length) throw new CertificateFormatError("unexpected field in tbsCertificate");

  const times = children(der, validity!);
  if (times.length !== 2) throw new CertificateFormatError("validity must hold notBefore and notAfter");
  const result = {
    notBefore: readTime(der, times[0]!),
    notAfter: readTime(der, times[1]!),
    isCa: false,
    keyUsage: undefined as number | undefined,
    uriSans: [] as string[],
  };
  if (extensions !== undefined) readExtensions(der, extensions, result);
  return Object.freeze({ ...result, uriSans: Object.freeze(result.uriSans) });
}

function readExtensions(
  der: Uint8Array,
  wrapper: Element,
  out: { isCa: boolean; keyUsage: number | undefined; uriSans: string[] },
): void {
  const inner = children(der, wrapper);
  if (inner.length !== 1) throw new CertificateFormatError("extensions must be one SEQUENCE");
  expectTag(inner[0], TAG.sequence, "extensions");
  const seen = new Set<string>();
  for (const extension of children(der, inner[0]!)) {
    expectTag(extension, TAG.sequence, "extension");
    const parts = children(der, extension);
    expectTag(parts[0], TAG.oid, "extension id");
    const oid = hex(der, parts[0]!);
    // RFC 5280 §4.2: a certificate must not carry one extension twice.
    if (seen.has(oid)) throw new CertificateFormatError(`extension ${oid} appears twice`);
    seen.add(oid);
    let next = 1;
    if (parts[next]?.tag === TAG.boolean) readBoolean(der, parts[next++]!, "extension critical flag");
    const value = parts[next++];
    expectTag(value, TAG.octetString, "extension value");
    if (next !== parts.length) throw new CertificateFormatError("unexpected field in extension");
    if (oid === OID.basicConstraints) out.isCa = readBasicConstraints(der, value!);
    else if (oid === OID.keyUsage) out.keyUsage = readKeyUsage(der, value!);
    else if (oid === OID.subjectAltName) out.uriSans = readUriSans(der, value!);
  }
}

/** `BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }` */
function readBasicConstraints(der: Uint8Array, value: Element): boolean {
  const seq = only(der, value, "basic constraints");
  expectTag(seq, TAG.sequence, "basic constraints");
  const parts = children(der, seq);
  let at = 0;
  let isCa = false;
  if (parts[at]?.tag === TAG.boolean) isCa = readBoolean(der, parts[at++]!, "basic constraints cA");
  if (parts[at]?.tag === TAG.integer) at++;
  if (at !== parts.length) throw new CertificateFormatError("unexpected field in basic constraints");
  return isCa;
}

/** `KeyUsage ::= BIT STRING`; bit n becomes flag `1 << n`. */
function readKeyUsage(der: Uint8Array, value: Element): number {
  const bits = only(der, value, "key usage");
  expectTag(bits, TAG.bitString, "key usage");
  const length = bits.end - bits.start;
  const unused = der[bits.start];
  if (length < 1 || unused === undefined || unused > 7 || (length === 1 && unused !== 0)) {
    throw new CertificateFormatError("key usage is not a valid BIT STRING");
  }
  let flags = 0;
  // Bits beyond decipherOnly (bit 8) are not defined; they are ignored.
  for (let bit = 0; bit < 9 && bit < (length - 1) * 8 - unused; bit++) {
    if ((der[bits.start + 1 + (bit >> 3)]! & (0x80 >> (bit & 7))) !== 0) flags |= 1 << bit;
  }
  return flags;
}

/** `SubjectAltName ::= SEQUENCE OF GeneralName`; keeps `[6] IA5String` (URIs). */
function readUriSans(der: Uint8Array, value: Element): string[] {
  const seq = only(der, value, "subject alternative name");
  expectTag(seq, TAG.sequence, "subject alternative name");
  const uris: string[] = [];
  for (const name of children(der, seq)) {
    if (name.tag !== TAG.uri) continue;
    let text = "";
    for (let i = name.start; i < name.end; i++) {
      const byte = der[i]!;
      if (byte > 0x7e || byte < 0x20) throw new CertificateFormatError("URI SAN holds a byte outside IA5 text");
      text += String.fromCharCode(byte);
    }
    uris.push(text);
  }
  return uris;
}

/** `Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }`, in RFC 5280's `Z` forms with seconds. */
function readTime(der: Uint8Array, time: Element): Date {
  let text = "";
  for (let i = time.start; i < time.end; i++) text += String.fromCharCode(der[i]!);
  let match: RegExpExecArray | null;
  let year: number;
  if (time.tag === TAG.utcTime && (match = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))) {
    // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (time.tag === TAG.generalizedTime && (match = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))) {
    year = Number(match[1]);
  } else {
    throw new CertificateFormatError("validity time is not a UTCTime or GeneralizedTime in Z form");
  }
  const [month, day, hour, minute, second] = match.slice(2).map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  // Date.UTC rolls 31 April over to 1 May: a round trip catches every out-of-range part.
  if (
    year < 0 || date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day ||
    date.getUTCHours() !== hour || date.getUTCMinutes() !== minute || date.getUTCSeconds() !== second
  ) {
    throw new CertificateFormatError("validity time names no real instant");
  }
  return date;
}

function readBoolean(der: Uint8Array, e: Element, what: string): boolean {
  if (e.end - e.start !== 1) throw new CertificateFormatError(`${what} is not a BOOLEAN`);
  const byte = der[e.start]!;
  if (byte !== 0x00 && byte !== 0xff) throw new CertificateFormatError(`${what} is not a DER BOOLEAN`);
  return byte === 0xff;
}

/** The single element inside an OCTET STRING extension value. */
function only(der: Uint8Array, value: Element, what: string): Element {
  const inner = element(der, value.start, value.end, what);
  if (inner.end !== value.end) throw new CertificateFormatError(`bytes after the ${what}`);
  return inner;
}

/** The elements directly inside a constructed element. */
function children(der: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  // Each step consumes at least two bytes, so the loop is bounded by the element's size.
  for (let pos = parent.start; pos < parent.end;) {
    const child = element(der, pos, parent.end, "field");
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** Reads the element at `pos`, which must end by `limit`. */
function element(der: Uint8Array, pos: number, limit: number, what: string): Element {
  if (pos + 2 > limit) throw new CertificateFormatError(`${what} is truncated`);
  const tag = der[pos]!;
  // High tag numbers never occur in certificates.
  if ((tag & 0x1f) === 0x1f) throw new CertificateFormatError(`${what} uses a multi-byte tag`);
  const first = der[pos + 1]!;
  let length: number;
  let start: number;
  if (first < 0x80) {
    length = first;
    start = pos + 2;
  } else {
    const count = first & 0x7f;
    // 0x80 is BER's indefinite form; more than 4 length bytes cannot fit a certificate.
    if (count === 0 || count > 4) throw new CertificateFormatError(`${what} has an invalid length`);
    if (pos + 2 + count > limit) throw new CertificateFormatError(`${what} is truncated`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[pos + 2 + i]!;
    // DER: the shortest form, so no leading zero byte and no long form below 128.
    if (der[pos + 2] === 0 || length < 0x80) throw new CertificateFormatError(`${what} length is not minimal`);
    start = pos + 2 + count;
  }
  const end = start + length;
  if (end > limit) throw new CertificateFormatError(`${what} is truncated`);
  return { tag, start, end };
}

function expectTag(e: Element | undefined, tag: number, what: string): void {
  if (e === undefined) throw new CertificateFormatError(`${what} is missing`);
  if (e.tag !== tag) {
    throw new CertificateFormatError(`${what} has tag 0x${e.tag.toString(16)}, want 0x${tag.toString(16)}`);
  }
}

function hex(der: Uint8Array, e: Element): string {
  let out = "";
  for (let i = e.start; i < e.end; i++) out += der[i]!.toString(16).padStart(2, "0");
  return out;
}
