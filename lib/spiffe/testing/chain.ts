/**
 * Test helper: a three-level PKI (root CA → intermediate CA → leaf SVID),
 * which the development CA cannot make, for chain-building tests.
 *
 * @module
 */

import * as x509 from "../x509.ts";

/** A root, one intermediate and a leaf, as DER and PEM. */
export interface TestChain {
  /** Root CA certificate (PEM): the trust bundle. */
  readonly rootPem: string;
  /** Intermediate CA certificate (DER). */
  readonly intermediateDer: Uint8Array;
  /** Leaf certificate (DER). */
  readonly leafDer: Uint8Array;
}

/** Options for {@linkcode createTestChain}. */
export interface TestChainOptions {
  /** Trust domain; default `spike.ist`. */
  trustDomain?: string;
  /** The leaf's SPIFFE ID; default `spiffe://<td>/workload`. */
  spiffeId?: string;
  /** Reference time; default now. */
  now?: Date;
  /** Make the intermediate expired at `now`. */
  expiredIntermediate?: boolean;
  /** Give the intermediate `CA:FALSE` (it then must not sign). */
  intermediateNotCa?: boolean;
}

const KEY_ALG: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALG: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const HOUR = 3_600_000;

/** Builds a fresh root → intermediate → leaf chain. */
export async function createTestChain(options: TestChainOptions = {}): Promise<TestChain> {
  const td = options.trustDomain ?? "spike.ist";
  const now = (options.now ?? new Date()).getTime();
  const rootKeys = await crypto.subtle.generateKey(KEY_ALG, false, ["sign", "verify"]);
  const midKeys = await crypto.subtle.generateKey(KEY_ALG, false, ["sign", "verify"]);
  const leafKeys = await crypto.subtle.generateKey(KEY_ALG, false, ["sign", "verify"]);
  const caUsage = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: "CN=test root",
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 24 * HOUR),
    keys: rootKeys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(caUsage, true),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${td}` }]),
    ],
  });
  const mid = await x509.X509CertificateGenerator.create({
    subject: "CN=test intermediate",
    issuer: root.subjectName,
    notBefore: new Date(now - 2 * HOUR),
    notAfter: new Date(options.expiredIntermediate ? now - HOUR : now + 24 * HOUR),
    publicKey: midKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(!options.intermediateNotCa, undefined, true),
      new x509.KeyUsagesExtension(options.intermediateNotCa ? x509.KeyUsageFlags.digitalSignature : caUsage, true),
    ],
  });
  const leaf = await x509.X509CertificateGenerator.create({
    subject: "O=test",
    issuer: mid.subjectName,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + HOUR),
    publicKey: leafKeys.publicKey,
    signingKey: midKeys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: options.spiffeId ?? `spiffe://${td}/workload` }]),
    ],
  });
  return {
    rootPem: root.toString("pem"),
    intermediateDer: new Uint8Array(mid.rawData),
    leafDer: new Uint8Array(leaf.rawData),
  };
}

/** The DER of the first certificate in a PEM string. */
export function firstDer(pem: string): Uint8Array {
  return new Uint8Array(x509.PemConverter.decodeFirst(pem));
}
