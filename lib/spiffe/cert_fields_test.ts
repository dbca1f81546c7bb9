import assert from "node:assert/strict";
import fc from "fast-check";
import { CertificateFormatError, KeyUsage, readCertFields } from "./cert_fields.ts";
import { createDevCa } from "./dev_ca.ts";
import { pemToDerList } from "./pem.ts";
import { createTestChain } from "./testing/chain.ts";
import * as x509 from "./x509.ts";

// ---------------------------------------------------------------------------
// A tiny DER writer, so tests can build certificates with exactly the field
// under test (readCertFields never checks signatures, so none is made).

function length(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return [0x80 | bytes.length, ...bytes];
}

function tlv(tag: number, ...parts: (number[] | Uint8Array)[]): number[] {
  const body = parts.flatMap((p) => [...p]);
  return [tag, ...length(body.length), ...body];
}

const seq = (...parts: number[][]) => tlv(0x30, ...parts);
const ascii = (s: string) => [...new TextEncoder().encode(s)];
const utc = (s: string) => tlv(0x17, ascii(s));
const generalized = (s: string) => tlv(0x18, ascii(s));
const EMPTY_NAME = seq();
const ALG = seq(tlv(0x06, [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
const SPKI = seq(ALG, tlv(0x03, [0, 1, 2, 3]));

function extension(oid: number[], value: number[], critical?: boolean): number[] {
  const flag = critical === undefined ? [] : [tlv(0x01, [critical ? 0xff : 0x00])];
  return seq(tlv(0x06, oid), ...flag, tlv(0x04, value));
}

const BASIC = [0x55, 0x1d, 0x13];
const KEY_USAGE = [0x55, 0x1d, 0x0f];
const SAN = [0x55, 0x1d, 0x11];

interface Parts {
  validity?: number[];
  extensions?: number[][] | undefined;
  trailing?: number[];
}

function cert(parts: Parts = {}): Uint8Array {
  const validity = parts.validity ?? seq(utc("250101000000Z"), utc("350101000000Z"));
  const exts = parts.extensions === undefined ? [] : [tlv(0xa3, seq(...parts.extensions))];
  const tbs = seq(tlv(0xa0, tlv(0x02, [2])), tlv(0x02, [1]), ALG, EMPTY_NAME, validity, EMPTY_NAME, SPKI, ...exts);
  return new Uint8Array([...seq(tbs, ALG, tlv(0x03, [0])), ...(parts.trailing ?? [])]);
}

function rejects(der: Uint8Array, message?: RegExp): void {
  assert.throws(() => readCertFields(der), (err: unknown) => {
    assert.ok(err instanceof CertificateFormatError, `expected CertificateFormatError, got ${err}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------

Deno.test("reads what @peculiar/x509 reads from real SVIDs and CAs", async () => {
  const ca = await createDevCa();
  const chain = await createTestChain();
  const samples: Uint8Array[] = [
    pemToDerList(ca.caCertPem)[0]!,
    chain.intermediateDer,
    chain.leafDer,
    ...pemToDerList(chain.rootPem),
  ];
  for (const options of [{}, { isCa: true }, { keyUsage: "ca" as const }, { extraUriSans: ["spiffe://spike.ist/b"] }]) {
    samples.push(pemToDerList((await ca.issue("spiffe://spike.ist/a", options)).certChainPem)[0]!);
  }
  for (const der of samples) {
    const ours = readCertFields(der);
    const reference = new x509.X509Certificate(new Uint8Array(der));
    assert.equal(ours.notBefore.getTime(), reference.notBefore.getTime());
    assert.equal(ours.notAfter.getTime(), reference.notAfter.getTime());
    assert.equal(ours.isCa, reference.getExtension(x509.BasicConstraintsExtension)?.ca ?? false);
    assert.equal(ours.keyUsage, reference.getExtension(x509.KeyUsagesExtension)?.usages);
    const san = reference.getExtension(x509.SubjectAlternativeNameExtension);
    assert.deepEqual(ours.uriSans, san?.names.items.filter((n) => n.type === "url").map((n) => n.value) ?? []);
  }
});

Deno.test("a certificate without extensions: not a CA, no key usage, no URI SAN", () => {
  const fields = readCertFields(cert());
  assert.equal(fields.isCa, false);
  assert.equal(fields.keyUsage, undefined);
  assert.deepEqual(fields.uriSans, []);
  assert.equal(fields.notBefore.toISOString(), "2025-01-01T00:00:00.000Z");
  assert.equal(fields.notAfter.toISOString(), "2035-01-01T00:00:00.000Z");
});

Deno.test("UTCTime years follow RFC 5280 (50..99 = 19YY), GeneralizedTime is taken as written", () => {
  const fields = readCertFields(cert({ validity: seq(utc("500101000000Z"), utc("491231235959Z")) }));
  assert.equal(fields.notBefore.toISOString(), "1950-01-01T00:00:00.000Z");
  assert.equal(fields.notAfter.toISOString(), "2049-12-31T23:59:59.000Z");
  const later = readCertFields(cert({ validity: seq(utc("240229120000Z"), generalized("20500101000000Z")) }));
  assert.equal(later.notBefore.toISOString(), "2024-02-29T12:00:00.000Z");
  assert.equal(later.notAfter.toISOString(), "2050-01-01T00:00:00.000Z");
});

Deno.test("times that are not RFC 5280's Z forms, or name no real instant, are refused", () => {
  for (
    const bad of [
      utc("2501010000Z"), // no seconds
      utc("250101000000+0100"), // offset
      utc("250230000000Z"), // 30 February
      utc("250101240000Z"), // hour 24
      utc("250101006000Z"), // minute 60
      generalized("20250101000000.5Z"), // fraction
      generalized("250101000000Z"), // UTCTime text in a GeneralizedTime
      tlv(0x13, ascii("250101000000Z")), // PrintableString
    ]
  ) {
    rejects(cert({ validity: seq(bad, utc("350101000000Z")) }));
  }
  rejects(cert({ validity: seq(utc("250101000000Z")) }), /notBefore and notAfter/);
});

Deno.test("basic constraints: CA:TRUE, an explicit CA:FALSE, and a path length", () => {
  assert.equal(readCertFields(cert({ extensions: [extension(BASIC, seq(tlv(0x01, [0xff])), true)] })).isCa, true);
  assert.equal(readCertFields(cert({ extensions: [extension(BASIC, seq(tlv(0x01, [0x00])))] })).isCa, false);
  assert.equal(readCertFields(cert({ extensions: [extension(BASIC, seq())] })).isCa, false);
  const withPath = cert({ extensions: [extension(BASIC, seq(tlv(0x01, [0xff]), tlv(0x02, [0])))] });
  assert.equal(readCertFields(withPath).isCa, true);
  // A BOOLEAN byte other than 00/FF is BER, not DER.
  rejects(cert({ extensions: [extension(BASIC, seq(tlv(0x01, [0x01])))] }), /DER BOOLEAN/);
  rejects(cert({ extensions: [extension(BASIC, seq(tlv(0x02, [0]), tlv(0x01, [0xff])))] }));
});

Deno.test("key usage bits map to flags, including decipherOnly in the second byte", () => {
  const usage = (bits: number[]) => readCertFields(cert({ extensions: [extension(KEY_USAGE, tlv(0x03, bits))] }));
  assert.equal(usage([0x07, 0x80]).keyUsage, KeyUsage.digitalSignature);
  assert.equal(usage([0x01, 0x06]).keyUsage, KeyUsage.keyCertSign | KeyUsage.cRLSign);
  assert.equal(usage([0x07, 0x80, 0x80]).keyUsage, KeyUsage.digitalSignature | KeyUsage.decipherOnly);
  assert.equal(usage([0x00]).keyUsage, 0);
  assert.throws(() => usage([0x08, 0x80]), CertificateFormatError);
  assert.throws(() => usage([]), CertificateFormatError);
});

Deno.test("URI SANs are kept in order; other names are skipped; non-IA5 bytes are refused", () => {
  const names = seq(
    tlv(0x82, ascii("example.org")),
    tlv(0x86, ascii("spiffe://spike.ist/a")),
    tlv(0x87, [127, 0, 0, 1]),
    tlv(0x86, ascii("https://x")),
  );
  assert.deepEqual(readCertFields(cert({ extensions: [extension(SAN, names)] })).uriSans, [
    "spiffe://spike.ist/a",
    "https://x",
  ]);
  rejects(cert({ extensions: [extension(SAN, seq(tlv(0x86, [0x73, 0xc3, 0xa9])))] }), /IA5/);
});

Deno.test("one extension twice is refused (RFC 5280 §4.2), so a second SAN cannot hide", () => {
  const first = extension(SAN, seq(tlv(0x86, ascii("spiffe://spike.ist/a"))));
  const second = extension(SAN, seq(tlv(0x86, ascii("spiffe://spike.ist/b"))));
  rejects(cert({ extensions: [first, second] }), /twice/);
});

Deno.test("unknown extensions are skipped", () => {
  const other = extension([0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37], [0x05, 0x00], true);
  assert.equal(readCertFields(cert({ extensions: [other, extension(BASIC, seq(tlv(0x01, [0xff])))] })).isCa, true);
});

Deno.test("not DER: trailing bytes, indefinite or non-minimal lengths, truncation, wrong outer tags", () => {
  rejects(cert({ trailing: [0] }), /after the certificate/);
  const good = cert();
  rejects(good.subarray(0, good.length - 1), /truncated/);
  rejects(new Uint8Array([0x30, 0x80, 0x00, 0x00]), /invalid length/);
  rejects(new Uint8Array([0x30, 0x81, 0x02, 0x30, 0x00]), /not minimal/);
  rejects(new Uint8Array([0x31, 0x00]), /tag/);
  rejects(new Uint8Array([]), /truncated/);
  rejects(new Uint8Array([0x30, 0x02, 0x30, 0x00]), /missing/);
});

Deno.test("any corruption of a real certificate is a CertificateFormatError or still parses, never a crash", async () => {
  const ca = await createDevCa();
  const der = pemToDerList((await ca.issue("spiffe://spike.ist/fuzz")).certChainPem)[0]!;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(der.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.nat(der.length),
      (edits, cut) => {
        const bytes = der.slice(0, Math.max(1, cut));
        for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
        try {
          const fields = readCertFields(bytes);
          assert.ok(fields.notBefore instanceof Date && Array.isArray(fields.uriSans));
        } catch (err) {
          assert.ok(err instanceof CertificateFormatError, String(err));
        }
      },
    ),
    { numRuns: 2000 },
  );
});
