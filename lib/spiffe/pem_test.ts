import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { createDevCa } from "./dev_ca.ts";
import {
  concatBytes,
  derListToPem,
  derListToPemBytes,
  parsePemBlocks,
  PemError,
  pemToDerList,
  splitConcatenatedDer,
} from "./pem.ts";
import { X509Certificate } from "./x509.ts";

const bytes = fc.uint8Array({ maxLength: 300 });

Deno.test("PEM round-trips any DER list, and the body is standard base64", () => {
  fc.assert(
    fc.property(fc.array(bytes, { maxLength: 4 }), (ders) => {
      const pem = derListToPem(ders, "CERTIFICATE");
      assert.deepEqual(pemToDerList(pem), ders);
      assert.deepEqual(pemToDerList(pem, "CERTIFICATE"), ders);
      assert.deepEqual(derListToPemBytes(ders, "CERTIFICATE"), new TextEncoder().encode(pem));
      // Node's base64 is an independent oracle for the body text.
      const bodies = pem.split(/-----[A-Z ]+-----\n/).filter((_, i) => i % 2 === 1);
      assert.deepEqual(bodies.map((b) => b.replaceAll("\n", "")), ders.map((d) => Buffer.from(d).toString("base64")));
      for (const line of pem.split("\n")) assert.ok(line.length <= 64);
    }),
  );
});

Deno.test("pemToDerList reads certificates made by another encoder", async () => {
  const ca = await createDevCa();
  const [der] = pemToDerList(ca.caCertPem, "CERTIFICATE");
  assert.deepEqual(der, new Uint8Array(new X509Certificate(ca.caCertPem).rawData));
});

Deno.test("pemToDerList filters by label and ignores text around blocks", () => {
  const a = new Uint8Array([1, 2, 3]);
  const b = new Uint8Array([4, 5]);
  const text = `Bag Attributes: x\r\n${derListToPem([a], "CERTIFICATE")}junk\n${
    derListToPem([b], "PRIVATE KEY").replaceAll("\n", "\r\n")
  }`;
  assert.deepEqual(pemToDerList(text, "CERTIFICATE"), [a]);
  assert.deepEqual(pemToDerList(new TextEncoder().encode(text), "PRIVATE KEY"), [b]);
  assert.deepEqual(parsePemBlocks(text).map((x) => x.label), ["CERTIFICATE", "PRIVATE KEY"]);
  assert.deepEqual(pemToDerList("no blocks here"), []);
});

Deno.test("pemToDerList rejects malformed blocks", () => {
  const good = derListToPem([new Uint8Array([1, 2, 3, 4])], "CERTIFICATE");
  const cases: [string, RegExp][] = [
    [good.slice(0, good.indexOf("-----END")), /has no END line/],
    [good.replace("END CERTIFICATE", "END KEY"), /mismatched END line/],
    [good.replace("AQIDBA", "AQ*DBA"), /invalid base64/],
    [good.replace("AQIDBA==", "AQIDBA="), /invalid base64 length/],
    [good.replace("AQIDBA==", "AQ==IDBA"), /invalid base64/],
    ["-----BEGIN CERTIFICATE", /not terminated/],
  ];
  for (const [pem, message] of cases) {
    assert.throws(() => pemToDerList(pem), (e) => e instanceof PemError && message.test(e.message), pem);
  }
  assert.throws(() => derListToPem([], "bad--label"), PemError);
});

/** A SEQUENCE around `content`, with the shortest DER length form. */
function sequence(content: Uint8Array): Uint8Array {
  const n = content.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concatBytes([new Uint8Array([0x30, ...length]), content]);
}

Deno.test("splitConcatenatedDer splits what was concatenated", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 5 }), (contents) => {
      const elements = contents.map(sequence);
      assert.deepEqual(splitConcatenatedDer(concatBytes(elements)), elements);
    }),
  );
});

Deno.test("splitConcatenatedDer rejects truncated, indefinite and non-SEQUENCE input", () => {
  const element = sequence(new Uint8Array(200));
  assert.throws(() => splitConcatenatedDer(element.subarray(0, 150)), /truncated/);
  assert.throws(() => splitConcatenatedDer(new Uint8Array([0x30])), /truncated/);
  assert.throws(() => splitConcatenatedDer(new Uint8Array([0x30, 0x80, 0, 0])), /invalid length/);
  assert.throws(() => splitConcatenatedDer(new Uint8Array([0x04, 0x00])), /not a SEQUENCE/);
  assert.deepEqual(splitConcatenatedDer(new Uint8Array(0)), []);
});
