/**
 * Turns the raw parts of an X.509-SVID (DER certificates, a PKCS#8 key, the
 * bundle) into a checked {@linkcode X509Identity}, whatever delivered them
 * (files or the Workload API). Both sources must refuse the same broken
 * inputs, most of all a key that does not belong to the certificate, which
 * is what a reader sees while files are being replaced.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { type CertFields, readCertFields } from "./cert_fields.ts";
import { parseSpiffeId } from "./id.ts";
import type { X509Identity } from "./identity.ts";
import { derListToPem, derListToPemBytes } from "./pem.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";

/** Why an identity source could not deliver an identity. */
export type IdentitySourceErrorReason =
  | "invalid_svid"
  | "missing"
  | "timeout"
  | "not_ready"
  | "closed"
  | "bad_endpoint";

/** An identity source failed; `reason` says how. Never carries key bytes. */
export class IdentitySourceError extends Error {
  /** Which failure. */
  readonly reason: IdentitySourceErrorReason;
  /** Creates the error; `cause` keeps an underlying error for logs. */
  constructor(reason: IdentitySourceErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "IdentitySourceError";
    this.reason = reason;
  }
}

/** The raw parts of an SVID as a source found them. */
export interface SvidParts {
  /** DER certificates, leaf first. */
  readonly chainDer: readonly Uint8Array[];
  /** PKCS#8 DER private key; the caller zeroes it afterwards. */
  readonly keyDer: Uint8Array;
  /** DER CA certificates trusted for peers. */
  readonly bundleDer: readonly Uint8Array[];
}

/**
 * Checks `parts` and builds a frozen identity: the leaf carries exactly one
 * URI SAN that is a valid SPIFFE ID, the private key is the leaf's, and the
 * bundle holds at least one certificate. Bundle certificates repeated across
 * trust domains appear once.
 *
 * @throws {IdentitySourceError} `invalid_svid`, with a message naming the
 *   broken rule (never key bytes), prefixed by `where`.
 */
export function buildIdentity(parts: SvidParts, where: string): X509Identity {
  const fail = (why: string, cause?: unknown): never => {
    throw new IdentitySourceError("invalid_svid", `${where}: ${why}`, { cause });
  };
  const leafDer = parts.chainDer[0];
  if (leafDer === undefined) return fail("no certificate");
  let leaf: X509Certificate;
  let fields: CertFields;
  try {
    // The same two parsers as peer validation (svid.ts), so an identity we accept is one peers accept.
    fields = readCertFields(leafDer);
    leaf = new X509Certificate(leafDer);
  } catch (e) {
    return fail("leaf certificate does not parse", e);
  }
  const spiffeId = leafSpiffeId(fields, fail);
  if (parts.keyDer.length === 0) return fail("no private key");
  if (!keyMatches(parts.keyDer, leafDer, leaf, fail)) return fail("private key does not match the leaf certificate");
  const bundle = uniqueDer(parts.bundleDer);
  if (bundle.length === 0) return fail("trust bundle is empty");
  for (const [i, der] of bundle.entries()) {
    try {
      readCertFields(der);
      new X509Certificate(der);
    } catch (e) {
      fail(`trust bundle certificate ${i + 1} does not parse`, e);
    }
  }
  return Object.freeze({
    spiffeId,
    certChainPem: derListToPem(parts.chainDer, "CERTIFICATE"),
    privateKeyPem: derListToPemBytes([parts.keyDer], "PRIVATE KEY"),
    trustBundlePem: derListToPem(bundle, "CERTIFICATE"),
  });
}

/** True when `a` and `b` hold the same certificates, key and bundle. */
export function sameIdentity(a: X509Identity, b: X509Identity): boolean {
  return a.spiffeId === b.spiffeId && a.certChainPem === b.certChainPem &&
    a.trustBundlePem === b.trustBundlePem && constantTimeEqual(a.privateKeyPem, b.privateKeyPem);
}

function leafSpiffeId(leaf: CertFields, fail: (why: string, cause?: unknown) => never): string {
  const uris = leaf.uriSans;
  if (uris.length !== 1) return fail(`leaf certificate has ${uris.length} URI SANs, want exactly 1`);
  try {
    return parseSpiffeId(uris[0]!).toString();
  } catch (e) {
    return fail("leaf URI SAN is not a valid SPIFFE ID", e);
  }
}

function keyMatches(
  keyDer: Uint8Array,
  leafDer: Uint8Array,
  leaf: X509Certificate,
  fail: (why: string, cause?: unknown) => never,
): boolean {
  let fromKey: Buffer;
  try {
    // A view, not a copy, so no second copy of the key is left to zero.
    const key = createPrivateKey({ key: view(keyDer), format: "der", type: "pkcs8" });
    fromKey = createPublicKey(key).export({ type: "spki", format: "der" });
  } catch {
    // No cause: the parser's message could quote key bytes.
    return fail("private key is not a PKCS#8 key");
  }
  let fromCert: Buffer;
  try {
    // Exported by the same encoder as the key's, so equivalent point encodings compare equal.
    fromCert = leaf.publicKey.export({ type: "spki", format: "der" });
  } catch (e) {
    return fail(`leaf public key is not usable (${leafDer.length} byte certificate)`, e);
  }
  return fromKey.equals(fromCert);
}

function uniqueDer(ders: readonly Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const der of ders) {
    const key = view(der).toString("base64");
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(der);
  }
  return out;
}

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
