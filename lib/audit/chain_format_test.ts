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
  linkOf,
  parseChainedLine,
  sealLine,
  sha256Hex,
  splitLine,
  unkeyedMacMatches,
} from "./chain_format.ts";

const CHAIN = { instance: "i-1", segment: 0, seq: 2, keyVersion: 1, prev: "0".repeat(64) };

Deno.test("chain format: the MAC is HMAC-SHA-256 of exactly the bytes before it, under HKDF(root, spike/v1/audit)", () => {
  const key = deriveAuditKey(testRootKey(), 1);
  const line = sealLine({ type: "audit", route: "/v1/x", note: 'quote " and ünïcode' }, CHAIN, key);
  const signed = '{"type":"audit","route":"/v1/x","note":"quote \\" and ünïcode","instance":"i-1","segment":0,' +
    `"seq":2,"keyVersion":1,"prev":"${"0".repeat(64)}"}`;
  const raw = deriveKey(testRootKey(), KeyPurpose.audit);
  const mac = bytesToHex(hmac(sha256, raw, new TextEncoder().encode(signed)));
  assert.equal(line, `${signed.slice(0, -1)},"mac":"${mac}"}`);
  assert.notDeepEqual(raw, deriveKey(testRootKey(), KeyPurpose.secrets), "its own purpose, its own key");
  assert.deepEqual(splitLine(line), { signed, mac });
  assert.equal(linkOf(line), sha256Hex(line));
  const parsed = parseChainedLine(line);
  assert.ok(typeof parsed !== "string");
  assert.deepEqual(parsed.chain, CHAIN);
  assert.equal(key.verify(new TextEncoder().encode(parsed.signed), parsed.mac), true);
  assert.equal(key.verify(new TextEncoder().encode(parsed.signed + " "), parsed.mac), false);
  key.destroy();
  assert.throws(() => key.sign(new Uint8Array(1)), /destroyed/);
});

Deno.test("chain format: an unkeyed record carries SHA-256; key and keyVersion must agree; junk is not a record", () => {
  const line = sealLine({ type: "audit" }, { ...CHAIN, keyVersion: null });
  const parsed = parseChainedLine(line);
  assert.ok(typeof parsed !== "string");
  assert.equal(parsed.mac, sha256Hex(parsed.signed));
  assert.equal(unkeyedMacMatches(parsed), true);
  assert.throws(() => sealLine({ type: "audit" }, CHAIN), /keyVersion does not match/);
  for (
    const [text, why] of [
      ['{"type":"audit"}', /does not end with a "mac" field/],
      [line.replace('"mac":"', '"mac": "'), /does not end with a "mac" field/],
      [line.replace('"seq":2', '"seq":0'), /bad "seq"/],
      [line.replace('"prev":"0', '"prev":"Z'), /bad "prev"/],
      [line.replace('{"type"', '["type"'), /not JSON/],
      ["x".repeat(70_000), /longer than/],
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
  assert.equal(unkeyedMacMatches({ signed: "x", mac: "zz" }), false, "junk is no match, not an exception");
});
