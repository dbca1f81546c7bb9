import assert from "node:assert/strict";
import fc from "fast-check";
import { isSpiffeId, MAX_SPIFFE_ID_BYTES, parseSpiffeId } from "./id.ts";
import { SpiffeIdError } from "./errors.ts";

const VALID: Array<[string, string, string]> = [
  ["spiffe://spike.ist", "spike.ist", ""],
  ["spiffe://spike.ist/spike/nexus", "spike.ist", "/spike/nexus"],
  ["spiffe://example.org/Ns/Prod-1/sa_web.v2", "example.org", "/Ns/Prod-1/sa_web.v2"],
  ["spiffe://a-b_c.d9/x", "a-b_c.d9", "/x"],
  ["spiffe://td/...", "td", "/..."],
  ["spiffe://td/.hidden/a..b", "td", "/.hidden/a..b"],
];

const INVALID: Array<[string, RegExp]> = [
  ["", /empty/],
  ["spike.ist/spike/nexus", /scheme/],
  ["https://spike.ist/x", /scheme/],
  ["SPIFFE://spike.ist/x", /lowercase "spiffe"/],
  ["Spiffe://spike.ist/x", /lowercase "spiffe"/],
  ["spiffe:/spike.ist/x", /scheme/],
  ["spiffe://", /trust domain is empty/],
  ["spiffe:///path", /trust domain is empty/],
  ["spiffe://Spike.ist/x", /trust domain must be lowercase/],
  ["spiffe://spike.ist:8443/x", /port/],
  ["spiffe://user@spike.ist/x", /userinfo/],
  ["spiffe://user:pw@spike.ist/x", /userinfo/],
  ["spiffe://spike.ist/x?a=b", /query/],
  ["spiffe://spike.ist/x#frag", /fragment/],
  ["spiffe://spike.ist?x", /query/],
  ["spiffe://spike ist/x", /trust domain has invalid character/],
  ["spiffe://spike.ist/", /trailing slash/],
  ["spiffe://spike.ist/a/", /trailing slash/],
  ["spiffe://spike.ist//a", /empty segment/],
  ["spiffe://spike.ist/a//b", /empty segment/],
  ["spiffe://spike.ist/./a", /"\." segment/],
  ["spiffe://spike.ist/a/..", /"\.\." segment/],
  ["spiffe://spike.ist/a b", /invalid character/],
  ["spiffe://spike.ist/a%20b", /invalid character "%"/],
  ["spiffe://spike.ist/ümlaut", /invalid character/],
  ["spiffe://spike.ist/a:b", /invalid character ":"/],
  [`spiffe://spike.ist/${"a".repeat(MAX_SPIFFE_ID_BYTES)}`, /longer than 2048 bytes/],
];

for (const [input, trustDomain, path] of VALID) {
  Deno.test(`parseSpiffeId accepts ${input}`, () => {
    const id = parseSpiffeId(input);
    assert.equal(id.trustDomain, trustDomain);
    assert.equal(id.path, path);
    assert.equal(id.toString(), input);
    assert.equal(`${id}`, input);
    assert.equal(isSpiffeId(input), true);
  });
}

for (const [input, reason] of INVALID) {
  Deno.test(`parseSpiffeId rejects ${JSON.stringify(input.slice(0, 60))}`, () => {
    assert.throws(() => parseSpiffeId(input), (err: unknown) => {
      assert.ok(err instanceof SpiffeIdError);
      assert.match(err.message, reason);
      return true;
    });
    assert.equal(isSpiffeId(input), false);
  });
}

Deno.test("parseSpiffeId accepts exactly 2048 bytes", () => {
  const prefix = "spiffe://spike.ist/";
  const id = prefix + "a".repeat(MAX_SPIFFE_ID_BYTES - prefix.length);
  assert.equal(parseSpiffeId(id).toString().length, MAX_SPIFFE_ID_BYTES);
  assert.equal(isSpiffeId(id + "a"), false);
});

Deno.test("SpiffeIdError truncates a huge input in its message", () => {
  let err: unknown;
  try {
    parseSpiffeId("x".repeat(10_000));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SpiffeIdError);
  assert.ok(err.message.length < 300);
});

Deno.test("parseSpiffeId round-trips every generated valid ID and never throws anything but SpiffeIdError", () => {
  const tdChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789.-_");
  const pathChar = fc.constantFrom(..."abcXYZ019.-_");
  const segment = fc.string({ unit: pathChar, minLength: 1, maxLength: 8 }).filter((s) => s !== "." && s !== "..");
  const validId = fc.tuple(
    fc.string({ unit: tdChar, minLength: 1, maxLength: 20 }),
    fc.array(segment, { maxLength: 5 }),
  ).map(([td, segs]) => `spiffe://${td}${segs.map((s) => `/${s}`).join("")}`);
  fc.assert(fc.property(validId, (s) => parseSpiffeId(s).toString() === s), { numRuns: 300 });
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (s) => {
      try {
        parseSpiffeId(`spiffe://${s}`);
      } catch (err) {
        return err instanceof SpiffeIdError;
      }
      return true;
    }),
    { numRuns: 300 },
  );
});
