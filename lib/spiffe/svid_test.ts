import assert from "node:assert/strict";
import { createDevCa, type DevCa } from "./dev_ca.ts";
import { SvidError, type SvidErrorReason } from "./errors.ts";
import { parseTrustBundle, peerChainToDer, trustBundleFromMap, validatePeerSvid } from "./svid.ts";
import { createTestChain, firstDer } from "./testing/chain.ts";

const NOW = new Date("2031-05-06T07:08:09Z");
const ID = "spiffe://spike.ist/spike/keeper";

let shared: Promise<{ ca: DevCa; other: DevCa }> | undefined;
function cas() {
  shared ??= (async () => ({
    ca: await createDevCa({ now: () => NOW }),
    other: await createDevCa({ now: () => NOW }),
  }))();
  return shared;
}

function rejectsWith(reason: SvidErrorReason, fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SvidError, `expected SvidError, got ${err}`);
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

Deno.test("a valid SVID yields its SPIFFE ID, with a PEM or parsed bundle", async () => {
  const { ca } = await cas();
  const id = await ca.issue(ID);
  const chain = [firstDer(id.certChainPem)];
  const result = validatePeerSvid(chain, ca.caCertPem, NOW);
  assert.equal(result.spiffeId, ID);
  assert.equal(result.trustDomain, "spike.ist");
  assert.equal(result.notAfter.getTime(), NOW.getTime() + 86_400_000);
  assert.equal(validatePeerSvid(chain, parseTrustBundle(ca.caCertPem), NOW).spiffeId, ID);
});

Deno.test("no certificate", async () => {
  const { ca } = await cas();
  const bundle = parseTrustBundle(ca.caCertPem);
  rejectsWith("no_certificate", () => validatePeerSvid([], bundle, NOW));
  rejectsWith("no_certificate", () => validatePeerSvid(undefined, bundle, NOW));
  rejectsWith("no_certificate", () => validatePeerSvid(null, bundle, NOW));
  // node:tls reports "no certificate" as an empty object.
  rejectsWith("no_certificate", () => validatePeerSvid({}, bundle, NOW));
});

Deno.test("garbage bytes", async () => {
  const { ca } = await cas();
  rejectsWith(
    "malformed_certificate",
    () => validatePeerSvid([new Uint8Array([0x30, 0x03, 1, 2, 3])], ca.caCertPem, NOW),
  );
});

Deno.test("two URI SANs", async () => {
  const { ca } = await cas();
  const id = await ca.issue(ID, { extraUriSans: ["spiffe://spike.ist/spike/nexus"] });
  rejectsWith("uri_san_count", () => validatePeerSvid([firstDer(id.certChainPem)], ca.caCertPem, NOW), /2 URI SANs/);
});

Deno.test("a URI SAN that is not a SPIFFE ID", async () => {
  const { ca } = await cas();
  for (const uri of ["https://spike.ist/x", "spiffe://spike.ist/a/../b", "spiffe://SPIKE.ist/x"]) {
    const id = await ca.issue(uri, { unchecked: true });
    rejectsWith("invalid_spiffe_id", () => validatePeerSvid([firstDer(id.certChainPem)], ca.caCertPem, NOW));
  }
});

Deno.test("a CA certificate used as a leaf", async () => {
  const { ca } = await cas();
  const id = await ca.issue(ID, { isCa: true });
  rejectsWith("leaf_is_ca", () => validatePeerSvid([firstDer(id.certChainPem)], ca.caCertPem, NOW));
});

Deno.test("a leaf with CA key usage but CA:FALSE", async () => {
  const { ca } = await cas();
  const id = await ca.issue(ID, { keyUsage: "ca" });
  rejectsWith("bad_key_usage", () => validatePeerSvid([firstDer(id.certChainPem)], ca.caCertPem, NOW));
});

Deno.test("validity window of the leaf", async () => {
  const { ca } = await cas();
  const expired = await ca.issue(ID, {
    notBefore: new Date(NOW.getTime() - 7200e3),
    notAfter: new Date(NOW.getTime() - 1),
  });
  rejectsWith("expired", () => validatePeerSvid([firstDer(expired.certChainPem)], ca.caCertPem, NOW), /expired at/);
  const future = await ca.issue(ID, {
    notBefore: new Date(NOW.getTime() + 1000),
    notAfter: new Date(NOW.getTime() + 7200e3),
  });
  rejectsWith("not_yet_valid", () => validatePeerSvid([firstDer(future.certChainPem)], ca.caCertPem, NOW));
  // The same certificates are fine at a time inside their window.
  const inside = new Date(NOW.getTime() + 2000);
  assert.equal(validatePeerSvid([firstDer(future.certChainPem)], ca.caCertPem, inside).spiffeId, ID);
});

Deno.test("a certificate from another CA, even one with the same name", async () => {
  const { ca, other } = await cas();
  const foreign = await other.issue(ID);
  rejectsWith("untrusted_chain", () => validatePeerSvid([firstDer(foreign.certChainPem)], ca.caCertPem, NOW));
  // Sending the foreign CA along does not help: trust comes from the bundle only.
  rejectsWith(
    "untrusted_chain",
    () => validatePeerSvid([firstDer(foreign.certChainPem), firstDer(other.caCertPem)], ca.caCertPem, NOW),
  );
  // A bundle with both CAs accepts it.
  assert.equal(validatePeerSvid([firstDer(foreign.certChainPem)], ca.caCertPem + other.caCertPem, NOW).spiffeId, ID);
});

Deno.test("an expired trust bundle CA", async () => {
  const ca = await createDevCa({ now: () => NOW, validityDays: 1 });
  const id = await ca.issue(ID, { notAfter: new Date(NOW.getTime() + 5 * 86_400_000) });
  const later = new Date(NOW.getTime() + 2 * 86_400_000);
  rejectsWith("expired", () => validatePeerSvid([firstDer(id.certChainPem)], ca.caCertPem, later), /trust bundle CA/);
});

Deno.test("a CA only vouches for the trust domain in its URI SAN", async () => {
  const { ca } = await cas();
  const foreignTd = await ca.issue("spiffe://evil.org/spike/nexus", { unchecked: true });
  rejectsWith(
    "untrusted_chain",
    () => validatePeerSvid([firstDer(foreignTd.certChainPem)], ca.caCertPem, NOW),
    /trust domain evil\.org/,
  );
});

Deno.test("trustBundleFromMap binds CAs to the map's trust domains", async () => {
  const { ca } = await cas();
  const inSpike = await ca.issue(ID);
  const inOther = await ca.issue("spiffe://other.org/x", { unchecked: true });
  const bundle = trustBundleFromMap({ "other.org": ca.caCertPem });
  assert.equal(bundle.size, 1);
  assert.equal(validatePeerSvid([firstDer(inOther.certChainPem)], bundle, NOW).spiffeId, "spiffe://other.org/x");
  rejectsWith("untrusted_chain", () => validatePeerSvid([firstDer(inSpike.certChainPem)], bundle, NOW));
  assert.throws(() => trustBundleFromMap({ "Bad TD": ca.caCertPem }));
});

Deno.test("chains through an intermediate CA sent by the peer", async () => {
  const chain = await createTestChain({ now: NOW });
  const ok = validatePeerSvid([chain.leafDer, chain.intermediateDer], chain.rootPem, NOW);
  assert.equal(ok.spiffeId, "spiffe://spike.ist/workload");
  // Intermediates may come in any order and with the root included.
  assert.equal(
    validatePeerSvid([chain.leafDer, firstDer(chain.rootPem), chain.intermediateDer], chain.rootPem, NOW).spiffeId,
    "spiffe://spike.ist/workload",
  );
  rejectsWith("untrusted_chain", () => validatePeerSvid([chain.leafDer], chain.rootPem, NOW));
});

Deno.test("an expired intermediate or a non-CA intermediate breaks the chain", async () => {
  const expired = await createTestChain({ now: NOW, expiredIntermediate: true });
  rejectsWith(
    "expired",
    () => validatePeerSvid([expired.leafDer, expired.intermediateDer], expired.rootPem, NOW),
    /intermediate/,
  );
  const notCa = await createTestChain({ now: NOW, intermediateNotCa: true });
  rejectsWith("untrusted_chain", () => validatePeerSvid([notCa.leafDer, notCa.intermediateDer], notCa.rootPem, NOW));
});

Deno.test("parseTrustBundle refuses empty bundles and non-CA certificates", async () => {
  const { ca } = await cas();
  assert.throws(() => parseTrustBundle(""), /no CA certificate/);
  assert.throws(() => parseTrustBundle("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"));
  const leaf = await ca.issue(ID);
  assert.throws(() => parseTrustBundle(leaf.certChainPem), /not a CA/);
  const two = parseTrustBundle(ca.caCertPem + "\n" + (await cas()).other.caCertPem);
  assert.equal(two.size, 2);
  assert.equal(two.certificates.length, 2);
});

Deno.test("peerChainToDer follows node's issuerCertificate links and stops at a self-signed root", () => {
  const leaf = { raw: new Uint8Array([1]) } as { raw: Uint8Array; issuerCertificate?: unknown };
  const mid = { raw: new Uint8Array([2]) } as { raw: Uint8Array; issuerCertificate?: unknown };
  const root = { raw: new Uint8Array([3]) } as { raw: Uint8Array; issuerCertificate?: unknown };
  leaf.issuerCertificate = mid;
  mid.issuerCertificate = root;
  root.issuerCertificate = root;
  assert.deepEqual(peerChainToDer(leaf as never), [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])]);
  assert.deepEqual(peerChainToDer({}), []);
  assert.deepEqual(peerChainToDer([new Uint8Array([9])]), [new Uint8Array([9])]);
  // A loop through distinct objects with equal bytes ends too.
  const a = { raw: new Uint8Array([1]) } as { raw: Uint8Array; issuerCertificate?: unknown };
  const b = { raw: new Uint8Array([1]), issuerCertificate: a };
  a.issuerCertificate = b;
  assert.equal(peerChainToDer(a as never).length, 1);
});

Deno.test("a remembered chain is checked against the clock again on every use", async () => {
  const { ca, other } = await cas();
  const bundle = parseTrustBundle(ca.caCertPem);
  const id = await ca.issue(ID, {
    notBefore: new Date(NOW.getTime() - 1000),
    notAfter: new Date(NOW.getTime() + 60_000),
  });
  const chain = [firstDer(id.certChainPem)];
  const first = validatePeerSvid(chain, bundle, NOW);
  assert.deepEqual(validatePeerSvid(chain, bundle, new Date(NOW.getTime() + 30_000)), first);
  rejectsWith("expired", () => validatePeerSvid(chain, bundle, new Date(NOW.getTime() + 61_000)));
  rejectsWith("not_yet_valid", () => validatePeerSvid(chain, bundle, new Date(NOW.getTime() - 2000)));
  // A verdict belongs to its bundle: another CA's bundle still refuses the chain.
  rejectsWith("untrusted_chain", () => validatePeerSvid(chain, parseTrustBundle(other.caCertPem), NOW));
});

Deno.test("a chain that lists the trust anchor after the leaf validates", async () => {
  const { ca } = await cas();
  const id = await ca.issue(ID);
  const chain = [firstDer(id.certChainPem), firstDer(ca.caCertPem)];
  assert.equal(validatePeerSvid(chain, parseTrustBundle(ca.caCertPem), NOW).spiffeId, ID);
});
