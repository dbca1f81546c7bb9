import assert from "node:assert/strict";
import { createDevCa } from "./dev_ca.ts";
import { PeerVerdicts } from "./peer_verdicts.ts";
import { parseTrustBundle, type ValidatedSvid } from "./svid.ts";

const svid = (notBefore: number, notAfter: number): ValidatedSvid => ({
  spiffeId: "spiffe://spike.ist/spike/pilot/role/superuser",
  trustDomain: "spike.ist",
  notBefore: new Date(notBefore),
  notAfter: new Date(notAfter),
});

Deno.test("peer verdicts: a hit only within the validity window and under the same bundle", async () => {
  const ca = await createDevCa();
  const bundle = parseTrustBundle(ca.caCertPem);
  const other = parseTrustBundle(ca.caCertPem);
  const verdicts = new PeerVerdicts();
  const key = PeerVerdicts.fingerprint(new Uint8Array([1, 2, 3]));
  assert.match(key, /^[0-9a-f]{64}$/);
  verdicts.remember(key, bundle, svid(1000, 2000), true);
  assert.equal(verdicts.lookup(key, bundle, 1500)?.allowed, true);
  assert.equal(verdicts.lookup(key, bundle, 999), undefined, "before notBefore");
  verdicts.remember(key, bundle, svid(1000, 2000), false);
  assert.equal(verdicts.lookup(key, bundle, 1500)?.allowed, false);
  assert.equal(verdicts.lookup(key, bundle, 2001), undefined, "after notAfter");
  assert.equal(verdicts.size, 0, "a verdict past its window is dropped");
  verdicts.remember(key, bundle, svid(1000, 2000), true);
  assert.equal(verdicts.lookup(key, other, 1500), undefined, "another bundle, even with the same CAs");
  verdicts.remember(key, bundle, svid(1000, 2000), true);
  verdicts.clear();
  assert.equal(verdicts.lookup(key, bundle, 1500), undefined);
});

Deno.test("peer verdicts: bounded, the least recently used goes first", async () => {
  const bundle = parseTrustBundle((await createDevCa()).caCertPem);
  const verdicts = new PeerVerdicts(3);
  for (const name of ["a", "b", "c"]) verdicts.remember(name, bundle, svid(0, 10), true);
  assert.ok(verdicts.lookup("a", bundle, 5), "a is used again");
  verdicts.remember("d", bundle, svid(0, 10), true);
  assert.equal(verdicts.size, 3);
  assert.equal(verdicts.lookup("b", bundle, 5), undefined, "b was the least recently used");
  for (const name of ["a", "c", "d"]) assert.ok(verdicts.lookup(name, bundle, 5), name);
  assert.throws(() => new PeerVerdicts(0), RangeError);
});
