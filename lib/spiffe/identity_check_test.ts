import assert from "node:assert/strict";
import { createDevCa } from "./dev_ca.ts";
import type { X509Identity } from "./identity.ts";
import { buildIdentity, IdentitySourceError, sameIdentity, type SvidParts } from "./identity_check.ts";
import { pemToDerList } from "./pem.ts";

const TD = "spike.ist";

function partsOf(identity: X509Identity, bundlePem = identity.trustBundlePem): SvidParts {
  return {
    chainDer: pemToDerList(identity.certChainPem, "CERTIFICATE"),
    keyDer: pemToDerList(identity.privateKeyPem, "PRIVATE KEY")[0]!,
    bundleDer: pemToDerList(bundlePem, "CERTIFICATE"),
  };
}

function invalid(pattern: RegExp) {
  return (e: unknown) => e instanceof IdentitySourceError && e.reason === "invalid_svid" && pattern.test(e.message);
}

Deno.test("buildIdentity accepts a matching SVID and normalizes its PEM", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const svid = await ca.issue(`spiffe://${TD}/ok`);
  const other = await createDevCa({ trustDomain: "other.td" });
  // The same CA twice (own and federated bundle) must appear once.
  const identity = buildIdentity(partsOf(svid, ca.caCertPem + other.caCertPem + ca.caCertPem), "test");
  assert.equal(identity.spiffeId, `spiffe://${TD}/ok`);
  assert.deepEqual(pemToDerList(identity.certChainPem), pemToDerList(svid.certChainPem));
  assert.deepEqual(
    pemToDerList(identity.privateKeyPem, "PRIVATE KEY"),
    pemToDerList(svid.privateKeyPem, "PRIVATE KEY"),
  );
  assert.deepEqual(pemToDerList(identity.trustBundlePem), pemToDerList(ca.caCertPem + other.caCertPem));
  assert.ok(Object.isFrozen(identity));
});

Deno.test("buildIdentity refuses a key that belongs to another certificate", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const a = partsOf(await ca.issue(`spiffe://${TD}/a`));
  const b = partsOf(await ca.issue(`spiffe://${TD}/b`));
  assert.throws(
    () => buildIdentity({ ...a, keyDer: b.keyDer }, "where"),
    invalid(/^where: private key does not match/),
  );
  assert.throws(() => buildIdentity({ ...a, keyDer: new Uint8Array([0x30, 0x00]) }, "w"), invalid(/not a PKCS#8 key/));
  assert.throws(() => buildIdentity({ ...a, keyDer: new Uint8Array(0) }, "w"), invalid(/no private key/));
});

Deno.test("buildIdentity refuses leaves without exactly one SPIFFE URI SAN", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const two = await ca.issue(`spiffe://${TD}/a`, { extraUriSans: [`spiffe://${TD}/b`] });
  assert.throws(() => buildIdentity(partsOf(two), "w"), invalid(/2 URI SANs, want exactly 1/));
  const notSpiffe = await ca.issue("https://example.com/x", { unchecked: true });
  assert.throws(() => buildIdentity(partsOf(notSpiffe), "w"), invalid(/not a valid SPIFFE ID/));
});

Deno.test("buildIdentity refuses missing or broken parts", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const parts = partsOf(await ca.issue(`spiffe://${TD}/a`));
  assert.throws(() => buildIdentity({ ...parts, chainDer: [] }, "w"), invalid(/no certificate/));
  assert.throws(() => buildIdentity({ ...parts, chainDer: [new Uint8Array([1, 2])] }, "w"), invalid(/does not parse/));
  assert.throws(() => buildIdentity({ ...parts, bundleDer: [] }, "w"), invalid(/trust bundle is empty/));
  assert.throws(
    () => buildIdentity({ ...parts, bundleDer: [new Uint8Array([0x30, 0])] }, "w"),
    invalid(/trust bundle certificate 1 does not parse/),
  );
});

Deno.test("sameIdentity compares every part", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const a = buildIdentity(partsOf(await ca.issue(`spiffe://${TD}/a`)), "w");
  const b = buildIdentity(partsOf(await ca.issue(`spiffe://${TD}/a`)), "w");
  assert.ok(sameIdentity(a, { ...a, privateKeyPem: a.privateKeyPem.slice() }));
  assert.ok(!sameIdentity(a, b));
  assert.ok(!sameIdentity(a, { ...a, privateKeyPem: b.privateKeyPem }));
  assert.ok(!sameIdentity(a, { ...a, trustBundlePem: "" }));
});
