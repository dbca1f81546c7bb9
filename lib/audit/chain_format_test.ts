import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { deriveKey, KeyPurpose } from "../crypto/kdf.ts";
import { deriveAuditKey } from "../nexus/audit_key.ts";
import { testRootKey } from "../nexus/testing.ts";
import {
  createAuditMacKey,
  createRecordHasher,
  linkOf,
  macMatches,
  parseChainedLine,
  sealLine,
  sealRecord,
  sha256Hex,
  splitLine,
  unkeyedMacMatches,
} from "./chain_format.ts";

const CHAIN = { format: 2, instance: "i-1", segment: 0, seq: 2, keyVersion: 1, prev: "0".repeat(64) } as const;
const V1_CHAIN = { ...CHAIN, format: 1 } as const;
const FIELDS = { type: "audit", route: "/v1/x", note: 'quote " and ünïcode' };
const encoder = new TextEncoder();

Deno.test("chain format 2: the MAC is HMAC-SHA-256 of the SHA-256 of exactly the bytes before it; the link is that SHA-256", () => {
  const key = deriveAuditKey(testRootKey(), 1);
  const { line, link } = sealRecord(FIELDS, CHAIN, key);
  const signed = '{"type":"audit","route":"/v1/x","note":"quote \\" and ünïcode","format":2,"instance":"i-1",' +
    `"segment":0,"seq":2,"keyVersion":1,"prev":"${"0".repeat(64)}"}`;
  const raw = deriveKey(testRootKey(), KeyPurpose.audit);
  const digest = createHash("sha256").update(encoder.encode(signed)).digest();
  const mac = createHmac("sha256", raw).update(digest).digest("hex");
  assert.equal(line, `${signed.slice(0, -1)},"mac":"${mac}"}`);
  assert.equal(link, digest.toString("hex"));
  assert.equal(linkOf(line), link);
  assert.notDeepEqual(raw, deriveKey(testRootKey(), KeyPurpose.secrets), "its own purpose, its own key");
  assert.deepEqual(splitLine(line), { signed, mac });
  const parsed = parseChainedLine(line);
  assert.ok(typeof parsed !== "string");
  assert.deepEqual(parsed.chain, CHAIN);
  assert.deepEqual(parsed.digest, new Uint8Array(digest));
  assert.equal(macMatches(key, parsed), true);
  assert.equal(macMatches(key, { ...parsed, signed: parsed.signed + " ", digest: undefined }), false);
  const edited = parseChainedLine(line.replace('"route":"/v1/x"', '"route":"/v1/y"'));
  assert.ok(typeof edited !== "string");
  assert.equal(macMatches(key, edited), false, "an edited record's digest no longer carries the MAC");
  key.destroy();
  assert.throws(() => key.sign(new Uint8Array(1)), /destroyed/);
});

Deno.test("chain format 1 (older logs): the MAC covers the bytes themselves; the link hashes the whole line", () => {
  const key = deriveAuditKey(testRootKey(), 1);
  const { line, link } = sealRecord(FIELDS, V1_CHAIN, key);
  const signed = '{"type":"audit","route":"/v1/x","note":"quote \\" and ünïcode","instance":"i-1","segment":0,' +
    `"seq":2,"keyVersion":1,"prev":"${"0".repeat(64)}"}`;
  const raw = deriveKey(testRootKey(), KeyPurpose.audit);
  const mac = bytesToHex(hmac(sha256, raw, encoder.encode(signed)));
  assert.equal(line, `${signed.slice(0, -1)},"mac":"${mac}"}`, "byte for byte what Nexus wrote before format 2");
  assert.equal(link, sha256Hex(line));
  assert.equal(linkOf(line), link);
  const parsed = parseChainedLine(line);
  assert.ok(typeof parsed !== "string");
  assert.deepEqual(parsed.chain, V1_CHAIN);
  assert.equal(parsed.digest, undefined);
  assert.equal(macMatches(key, parsed), true);
  assert.equal(macMatches(key, { ...parsed, signed: parsed.signed + " " }), false);
  const other = deriveAuditKey(new Uint8Array(32).fill(9), 1);
  assert.equal(macMatches(other, parsed), false);
  key.destroy();
  other.destroy();
});

Deno.test("chain format: an unkeyed record carries SHA-256; key and keyVersion must agree; junk is not a record", () => {
  for (const chain of [CHAIN, V1_CHAIN]) {
    const line = sealLine({ type: "audit" }, { ...chain, keyVersion: null });
    const parsed = parseChainedLine(line);
    assert.ok(typeof parsed !== "string");
    assert.equal(parsed.mac, sha256Hex(parsed.signed), `format ${chain.format}`);
    assert.equal(unkeyedMacMatches(parsed), true);
    const edited = parseChainedLine(line.replace('"type":"audit"', '"type":"audiT"'));
    assert.ok(typeof edited !== "string");
    assert.equal(unkeyedMacMatches(edited), false, `format ${chain.format}: an edit breaks the hash`);
  }
  assert.throws(() => sealLine({ type: "audit" }, CHAIN), /keyVersion does not match/);
  assert.throws(() => sealLine({ type: "audit" }, { ...CHAIN, keyVersion: null, format: 3 as never }), /format 3/);
  assert.throws(
    () => sealLine({ type: "audit", format: 2 }, { ...V1_CHAIN, keyVersion: null }),
    /cannot carry a "format" field/,
  );
  const line = sealLine({ type: "audit" }, { ...CHAIN, keyVersion: null });
  for (
    const [text, why] of [
      ['{"type":"audit"}', /does not end with a "mac" field/],
      [line.replace('"mac":"', '"mac": "'), /does not end with a "mac" field/],
      [line.replace('"seq":2', '"seq":0'), /bad "seq"/],
      [line.replace('"prev":"0', '"prev":"Z'), /bad "prev"/],
      [line.replace('{"type"', '["type"'), /not JSON/],
      ["x".repeat(70_000), /longer than/],
      [line.replace('"format":2', '"format":3'), /bad "format"/],
      [line.replace('"format":2', '"format":1'), /bad "format"/],
      [line.replace('"format":2', '"format":"2"'), /bad "format"/],
    ] as const
  ) {
    const result = parseChainedLine(text);
    assert.ok(typeof result === "string" && why.test(result), `${text.slice(0, 40)}: ${String(result)}`);
  }
});

Deno.test("chain format: the audit MAC equals node:crypto's HMAC-SHA-256 for any length; only lower-case hex verifies", () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 477, 4096]) {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const message = crypto.getRandomValues(new Uint8Array(length));
    const key = createAuditMacKey(1, raw);
    const mac = key.sign(message);
    assert.equal(mac, createHmac("sha256", raw).update(message).digest("hex"), `node:crypto, ${length} bytes`);
    assert.equal(key.verify(message, mac), true);
    const flipped = `${mac.slice(0, -1)}${mac.endsWith("0") ? "1" : "0"}`;
    assert.equal(key.verify(message, flipped), false);
    assert.equal(key.verify(message, mac.toUpperCase()), false, "only lower-case hex is a MAC");
    key.destroy();
  }
  assert.equal(sha256Hex("ünïcode"), createHash("sha256").update(new TextEncoder().encode("ünïcode")).digest("hex"));
  assert.equal(
    unkeyedMacMatches({ signed: "x", mac: "zz", digest: undefined }),
    false,
    "junk is no match, not an exception",
  );
  assert.throws(() => linkOf('{"type":"audit"}'), /not a chained record/);
});

Deno.test("chain format: a key and a record hasher used over and over give node:crypto's answer every time", () => {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const key = createAuditMacKey(1, raw);
  const hasher = createRecordHasher();
  // Lengths that leave different partial blocks behind, long after short and back.
  const lengths = [477, 3, 64, 0, 130, 55, 56, 4096, 1, 119, 32, 32, 700];
  const digests: Uint8Array[] = [];
  for (const length of lengths) {
    const message = crypto.getRandomValues(new Uint8Array(length));
    const mac = key.sign(message);
    assert.equal(mac, createHmac("sha256", raw).update(message).digest("hex"), `MAC of ${length} bytes`);
    assert.equal(key.verify(message, mac), true);
    const digest = hasher.digest(message);
    assert.equal(bytesToHex(digest), createHash("sha256").update(message).digest("hex"), `SHA-256 of ${length} bytes`);
    digests.push(digest);
  }
  assert.equal(new Set(digests).size, lengths.length, "each digest is an array of its own");
  key.destroy();
  assert.throws(() => key.verify(new Uint8Array(1), "0".repeat(64)), /destroyed/);
});
