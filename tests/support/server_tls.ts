/**
 * A plain (non-SPIFFE) TLS server certificate and the CA that signed it, for
 * test servers that speak ordinary TLS, such as the Postgres cluster.
 *
 * @module
 */
import * as x509 from "../../lib/spiffe/x509.ts";

/** PEM material of a test server certificate. */
export interface ServerTls {
  /** The CA certificate clients should trust. */
  readonly caPem: string;
  /** The server certificate. */
  readonly certPem: string;
  /** The server's PKCS#8 private key. */
  readonly keyPem: string;
}

const KEY_ALG: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALG: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const HOUR_MS = 60 * 60 * 1000;

function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive, non-zero
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh CA and a server certificate, valid for a day, for the given DNS names (no IP SANs). */
export async function makeServerTls(dnsNames: readonly string[]): Promise<ServerTls> {
  const now = Date.now();
  const caKeys = await crypto.subtle.generateKey(KEY_ALG, false, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=spike test CA",
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 24 * HOUR_MS),
    keys: caKeys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const keys = await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${dnsNames[0] ?? "server"}`,
    issuer: ca.subject,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 24 * HOUR_MS),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: "dns" as const, value }))),
    ],
  });
  const der = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    caPem: ca.toString("pem") + "\n",
    certPem: cert.toString("pem") + "\n",
    keyPem: x509.PemConverter.encode(der, "PRIVATE KEY") + "\n",
  };
}
