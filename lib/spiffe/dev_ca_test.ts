import assert from "node:assert/strict";
import { join } from "node:path";
import * as x509 from "./x509.ts";
import { CA_CERT_FILE, CA_KEY_FILE, createDevCa, loadOrCreateDevCa, SVID_FILES, writeSvidFiles } from "./dev_ca.ts";
import { validatePeerSvid } from "./svid.ts";
import { firstDer } from "./testing/chain.ts";

const NEXUS = "spiffe://spike.ist/spike/nexus";
const FIXED = new Date("2030-01-02T03:04:05Z");

function cert(pem: string): x509.X509Certificate {
  return new x509.X509Certificate(pem);
}

function uris(c: x509.X509Certificate): string[] {
  return c.getExtension(x509.SubjectAlternativeNameExtension)!.names.items
    .filter((n) => n.type === "url")
    .map((n) => n.value);
}

Deno.test("the CA certificate is a CA for spiffe://<td>", async () => {
  const ca = await createDevCa({ trustDomain: "example.org", now: () => FIXED, validityDays: 10 });
  assert.equal(ca.trustDomain, "example.org");
  const c = cert(ca.caCertPem);
  assert.deepEqual(uris(c), ["spiffe://example.org"]);
  assert.equal(c.getExtension(x509.BasicConstraintsExtension)?.ca, true);
  const usage = c.getExtension(x509.KeyUsagesExtension)!.usages;
  assert.equal(usage, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  assert.equal(c.notAfter.getTime() - FIXED.getTime(), 10 * 86_400_000);
  assert.ok(c.notBefore < FIXED);
  assert.ok(await c.isSelfSigned());
});

Deno.test("default trust domain is spike.ist; bad trust domains are refused", async () => {
  assert.equal((await createDevCa()).trustDomain, "spike.ist");
  await assert.rejects(createDevCa({ trustDomain: "Spike.IST" }), /lowercase/);
});

Deno.test("issued SVIDs have the X.509-SVID shape and validate", async () => {
  const ca = await createDevCa({ now: () => FIXED });
  const id = await ca.issue(NEXUS);
  assert.equal(id.spiffeId, NEXUS);
  assert.equal(id.trustBundlePem, ca.caCertPem);
  const leaf = cert(id.certChainPem);
  assert.deepEqual(uris(leaf), [NEXUS]);
  assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)?.ca, false);
  const usage = leaf.getExtension(x509.KeyUsagesExtension)!.usages;
  assert.ok(usage & x509.KeyUsageFlags.digitalSignature);
  assert.equal(usage & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign), 0);
  assert.deepEqual([...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages], [
    x509.ExtendedKeyUsage.serverAuth,
    x509.ExtendedKeyUsage.clientAuth,
  ]);
  assert.equal(leaf.notBefore.getTime(), FIXED.getTime() - 60_000, "a minute of skew allowance");
  assert.equal(leaf.notAfter.getTime(), FIXED.getTime() + 86_400_000, "24 h by default");
  assert.ok(await leaf.verify({ publicKey: cert(ca.caCertPem).publicKey, signatureOnly: true }));
  assert.equal(validatePeerSvid([firstDer(id.certChainPem)], ca.caCertPem, FIXED).spiffeId, NEXUS);

  const keyPem = new TextDecoder().decode(id.privateKeyPem);
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = await crypto.subtle.importKey(
    "pkcs8",
    x509.PemConverter.decodeFirst(keyPem),
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  const data = new TextEncoder().encode("proof of possession");
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, data);
  const pub = await leaf.publicKey.export({ name: "ECDSA", namedCurve: "P-256" }, ["verify"]);
  assert.ok(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pub, sig, data), "key matches cert");
});

Deno.test("serials are random and keys fresh per SVID", async () => {
  const ca = await createDevCa();
  const a = cert((await ca.issue(NEXUS)).certChainPem);
  const b = cert((await ca.issue(NEXUS)).certChainPem);
  assert.notEqual(a.serialNumber, b.serialNumber);
  assert.notDeepEqual(new Uint8Array(a.publicKey.rawData), new Uint8Array(b.publicKey.rawData));
});

Deno.test("issue options: ttl, explicit window, extra SANs, CA flag", async () => {
  const ca = await createDevCa({ now: () => FIXED });
  const short = cert((await ca.issue(NEXUS, { ttlSeconds: 300 })).certChainPem);
  assert.equal(short.notAfter.getTime(), FIXED.getTime() + 300_000);
  const past = cert(
    (await ca.issue(NEXUS, { notBefore: new Date("2020-01-01Z"), notAfter: new Date("2020-01-02Z") })).certChainPem,
  );
  assert.equal(past.notAfter.toISOString(), "2020-01-02T00:00:00.000Z");
  const two = cert((await ca.issue(NEXUS, { extraUriSans: ["spiffe://spike.ist/other"] })).certChainPem);
  assert.deepEqual(uris(two), [NEXUS, "spiffe://spike.ist/other"]);
  const asCa = cert((await ca.issue(NEXUS, { isCa: true })).certChainPem);
  assert.equal(asCa.getExtension(x509.BasicConstraintsExtension)?.ca, true);
  assert.equal(asCa.getExtension(x509.KeyUsagesExtension)!.usages & x509.KeyUsageFlags.keyCertSign, 32);
});

Deno.test("a default lifetime never outlives the CA", async () => {
  const ca = await createDevCa({ now: () => FIXED, validityDays: 0.5 });
  const leaf = cert((await ca.issue(NEXUS)).certChainPem);
  assert.equal(leaf.notAfter.getTime(), cert(ca.caCertPem).notAfter.getTime());
});

Deno.test("issue refuses invalid IDs and other trust domains unless unchecked", async () => {
  const ca = await createDevCa();
  await assert.rejects(ca.issue("spiffe://spike.ist/a/../b"), /invalid SPIFFE ID/);
  await assert.rejects(ca.issue("spiffe://other.org/x"), /trust domain spike\.ist/);
  const odd = await ca.issue("https://not-spiffe.example/x", { unchecked: true });
  assert.deepEqual(uris(cert(odd.certChainPem)), ["https://not-spiffe.example/x"]);
});

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

Deno.test("loadOrCreateDevCa persists the CA (0600 files, 0700 dir) and reloads the same one", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "nested", "ca");
    const first = await loadOrCreateDevCa(dir, { trustDomain: "dev.local" });
    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(join(dir, CA_CERT_FILE)), 0o600);
    assert.equal(await mode(join(dir, CA_KEY_FILE)), 0o600);
    assert.equal(await Deno.readTextFile(join(dir, CA_CERT_FILE)), first.caCertPem);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [CA_CERT_FILE, CA_KEY_FILE]);

    const again = await loadOrCreateDevCa(dir);
    assert.equal(again.trustDomain, "dev.local");
    assert.equal(again.caCertPem, first.caCertPem);
    // The reloaded key really signs for the stored certificate.
    const svid = await again.issue("spiffe://dev.local/w");
    assert.equal(validatePeerSvid([firstDer(svid.certChainPem)], first.caCertPem, new Date()).spiffeId, svid.spiffeId);

    await assert.rejects(loadOrCreateDevCa(dir, { trustDomain: "spike.ist" }), /trust domain dev\.local/);
    await assert.rejects(
      loadOrCreateDevCa(dir, { now: () => new Date(Date.now() + 400 * 86_400_000) }),
      /expired/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadOrCreateDevCa refuses a half-present CA and a key of another CA", async () => {
  const root = await Deno.makeTempDir();
  try {
    const a = join(root, "a");
    const b = join(root, "b");
    await loadOrCreateDevCa(a);
    await loadOrCreateDevCa(b);
    await Deno.remove(join(a, CA_KEY_FILE));
    await assert.rejects(loadOrCreateDevCa(a), /incomplete/);
    // a/ca.pem still holds A's certificate; now put B's key beside it.
    await Deno.copyFile(join(b, CA_KEY_FILE), join(a, CA_KEY_FILE));
    await assert.rejects(loadOrCreateDevCa(a), /does not match/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeSvidFiles writes spiffe-helper's layout, key 0600, with no temp files left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await createDevCa();
    const one = await ca.issue(NEXUS);
    await writeSvidFiles(dir, one);
    assert.equal(await Deno.readTextFile(join(dir, SVID_FILES.cert)), one.certChainPem);
    assert.deepEqual(await Deno.readFile(join(dir, SVID_FILES.key)), one.privateKeyPem);
    assert.equal(await Deno.readTextFile(join(dir, SVID_FILES.bundle)), one.trustBundlePem);
    assert.equal(await mode(join(dir, SVID_FILES.key)), 0o600);

    const two = await ca.issue(NEXUS);
    await writeSvidFiles(dir, two);
    assert.equal(await Deno.readTextFile(join(dir, SVID_FILES.cert)), two.certChainPem);
    assert.equal(await mode(join(dir, SVID_FILES.key)), 0o600);
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(names, [SVID_FILES.bundle, SVID_FILES.cert, SVID_FILES.key].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
