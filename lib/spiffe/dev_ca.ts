/**
 * A development certificate authority that mints X.509-SVIDs, so `spike dev`
 * and the tests get real mutual TLS without running SPIRE.
 *
 * Keys are ECDSA P-256 made with WebCrypto. The CA certificate carries the
 * trust domain's own SPIFFE ID (`spiffe://<td>`) as its URI SAN, as SPIRE's
 * CAs do. Leaves are short-lived X.509-SVIDs with exactly one URI SAN.
 *
 * Not for production: the CA key sits in a file on disk.
 *
 * @module
 */

import { join } from "node:path";
import * as x509 from "./x509.ts";
import { checkTrustDomainName, parseSpiffeId } from "./id.ts";
import type { X509Identity } from "./identity.ts";

/** Knobs for {@linkcode DevCa.issue}. The unusual ones exist so tests can mint bad SVIDs. */
export interface IssueOptions {
  /** Lifetime from now; default 24 h. Ignored when `notAfter` is given. */
  ttlSeconds?: number;
  /** Start of validity; default one minute ago (absorbs clock skew between hosts). */
  notBefore?: Date;
  /** End of validity; may be in the past (to build an expired SVID). */
  notAfter?: Date;
  /** Extra URI SANs after the SPIFFE ID (an SVID with more than one is invalid). */
  extraUriSans?: string[];
  /** Mark the certificate `CA:TRUE` (a CA certificate is never a valid leaf). */
  isCa?: boolean;
  /** Key usage bits; default `"ca"` when `isCa`, else `"leaf"`. */
  keyUsage?: "leaf" | "ca";
  /**
   * Skip checking that `spiffeId` is a valid SPIFFE ID in this CA's trust
   * domain, to build SVIDs a validator must reject.
   */
  unchecked?: boolean;
}

/** A development CA: its trust domain, its certificate, and a way to mint SVIDs. */
export interface DevCa {
  /** The trust domain this CA signs for, e.g. `spike.ist`. */
  readonly trustDomain: string;
  /** The CA certificate (PEM): the trust bundle for everything it issues. */
  readonly caCertPem: string;
  /** Mints a fresh key pair and an X.509-SVID for `spiffeId`. */
  issue(spiffeId: string, options?: IssueOptions): Promise<X509Identity>;
}

/** Options for {@linkcode createDevCa}. */
export interface CreateDevCaOptions {
  /** Trust domain name; default `spike.ist`. */
  trustDomain?: string;
  /** Clock; default the system clock. */
  now?: () => Date;
  /** CA certificate lifetime in days; default 365. */
  validityDays?: number;
}

/** The default trust domain of SPIKE. */
export const DEFAULT_TRUST_DOMAIN = "spike.ist";

/** File names used by {@linkcode loadOrCreateDevCa}. */
export const CA_CERT_FILE = "ca.pem";
/** File holding the CA's PKCS#8 private key (mode 0600). */
export const CA_KEY_FILE = "ca_key.pem";
/** spiffe-helper's file names, written by {@linkcode writeSvidFiles}. */
export const SVID_FILES = Object.freeze({ cert: "svid.pem", key: "svid_key.pem", bundle: "svid_bundle.pem" });

const KEY_ALG: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALG: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const SKEW_MS = 60_000;
const DEFAULT_LEAF_TTL_S = 24 * 60 * 60;
const DEFAULT_CA_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Creates a new in-memory development CA with a fresh key. */
export async function createDevCa(options: CreateDevCaOptions = {}): Promise<DevCa> {
  const created = await generateCa(options);
  return created.ca;
}

/**
 * Loads the CA kept in `dir` (`ca.pem`, `ca_key.pem`), or creates one there
 * on first use so `spike dev` keeps the same trust bundle across restarts.
 * A new directory is made mode 0700, both files mode 0600.
 *
 * @throws when only one of the two files exists, the key does not match the
 * certificate, the CA has expired, or `trustDomain` differs from the stored CA.
 */
export async function loadOrCreateDevCa(
  dir: string,
  options: { trustDomain?: string; now?: () => Date } = {},
): Promise<DevCa> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (certPem !== undefined && keyPem !== undefined) {
    try {
      return await loadCa(certPem, keyPem, options);
    } finally {
      keyPem.fill(0);
    }
  }
  if (certPem !== undefined || keyPem !== undefined) {
    keyPem?.fill(0);
    throw new Error(`dev CA in ${dir} is incomplete: expected both ${CA_CERT_FILE} and ${CA_KEY_FILE}`);
  }
  await ensurePrivateDir(dir);
  const { ca, privateKeyPem } = await generateCa(options);
  try {
    await writeFileAtomic(keyPath, privateKeyPem, 0o600);
    await writeFileAtomic(certPath, new TextEncoder().encode(ca.caCertPem), 0o600);
  } finally {
    privateKeyPem.fill(0);
  }
  return ca;
}

/**
 * Writes an identity in spiffe-helper's layout: `svid.pem` (chain),
 * `svid_key.pem` (mode 0600) and `svid_bundle.pem`.
 *
 * Each file goes to a temporary name and is then renamed over the old one,
 * so a reader never sees a half-written file. The bundle and key are
 * replaced before `svid.pem`, the file watchers usually key on.
 */
export async function writeSvidFiles(dir: string, identity: X509Identity): Promise<void> {
  await ensurePrivateDir(dir);
  const enc = new TextEncoder();
  await writeFileAtomic(join(dir, SVID_FILES.bundle), enc.encode(identity.trustBundlePem), 0o644);
  await writeFileAtomic(join(dir, SVID_FILES.key), identity.privateKeyPem, 0o600);
  await writeFileAtomic(join(dir, SVID_FILES.cert), enc.encode(identity.certChainPem), 0o644);
}

// ---------------------------------------------------------------------------

interface CaMaterial {
  readonly trustDomain: string;
  readonly cert: x509.X509Certificate;
  readonly signingKey: CryptoKey;
  readonly now: () => Date;
}

async function generateCa(options: CreateDevCaOptions): Promise<{ ca: DevCa; privateKeyPem: Uint8Array }> {
  const trustDomain = checkTrustDomainName(options.trustDomain ?? DEFAULT_TRUST_DOMAIN);
  const now = options.now ?? (() => new Date());
  const validityDays = options.validityDays ?? DEFAULT_CA_DAYS;
  if (!(validityDays > 0)) throw new RangeError("validityDays must be positive");

  // Extractable so loadOrCreateDevCa can persist it; callers of createDevCa
  // never see the key.
  const keys = await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"]);
  const start = now().getTime();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ O: ["spike"] }, { CN: [`spike development CA (${trustDomain})`] }],
    notBefore: new Date(start - SKEW_MS),
    notAfter: new Date(start + validityDays * DAY_MS),
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${trustDomain}` }]),
    ],
  });
  const privateKeyPem = await exportPrivateKeyPem(keys.privateKey);
  return { ca: makeDevCa({ trustDomain, cert, signingKey: keys.privateKey, now }), privateKeyPem };
}

async function loadCa(
  certPem: Uint8Array,
  keyPem: Uint8Array,
  options: { trustDomain?: string; now?: () => Date },
): Promise<DevCa> {
  const now = options.now ?? (() => new Date());
  const cert = new x509.X509Certificate(new TextDecoder().decode(certPem));
  const uris = uriSans(cert);
  const trustDomain = uris.length === 1 ? parseSpiffeId(uris[0]!).trustDomain : undefined;
  if (trustDomain === undefined) throw new Error("stored dev CA certificate has no spiffe://<trust-domain> URI SAN");
  if (options.trustDomain !== undefined && options.trustDomain !== trustDomain) {
    throw new Error(
      `stored dev CA is for trust domain ${trustDomain}, not ${options.trustDomain}; remove it to start over`,
    );
  }
  if (cert.notAfter.getTime() <= now().getTime()) {
    throw new Error(`stored dev CA expired on ${cert.notAfter.toISOString()}; remove it to start over`);
  }
  const der = x509.PemConverter.decodeFirst(new TextDecoder().decode(keyPem));
  let signingKey: CryptoKey;
  try {
    signingKey = await crypto.subtle.importKey("pkcs8", der, KEY_ALG, false, ["sign"]);
  } finally {
    new Uint8Array(der).fill(0);
  }
  // A key that does not belong to the certificate would mint SVIDs nobody can verify.
  const probe = new TextEncoder().encode("spike dev CA key check");
  const signature = await crypto.subtle.sign(SIGN_ALG, signingKey, probe);
  const publicKey = await cert.publicKey.export(KEY_ALG, ["verify"]);
  if (!(await crypto.subtle.verify(SIGN_ALG, publicKey, signature, probe))) {
    throw new Error(`stored dev CA key does not match its certificate`);
  }
  return makeDevCa({ trustDomain, cert, signingKey, now });
}

function makeDevCa(material: CaMaterial): DevCa {
  const caCertPem = pemWithNewline(material.cert.toString("pem"));
  return Object.freeze({
    trustDomain: material.trustDomain,
    caCertPem,
    issue: (spiffeId: string, options: IssueOptions = {}) => issueSvid(material, caCertPem, spiffeId, options),
  });
}

async function issueSvid(
  ca: CaMaterial,
  caCertPem: string,
  spiffeId: string,
  options: IssueOptions,
): Promise<X509Identity> {
  if (!options.unchecked) {
    const id = parseSpiffeId(spiffeId);
    if (id.trustDomain !== ca.trustDomain) {
      throw new Error(`cannot issue ${spiffeId}: this CA signs for trust domain ${ca.trustDomain}`);
    }
  }
  const isCa = options.isCa ?? false;
  const usage = options.keyUsage ?? (isCa ? "ca" : "leaf");
  const nowMs = ca.now().getTime();
  const notBefore = options.notBefore ?? new Date(nowMs - SKEW_MS);
  let notAfter = options.notAfter ?? new Date(nowMs + (options.ttlSeconds ?? DEFAULT_LEAF_TTL_S) * 1000);
  // Like SPIRE: a default lifetime never outlives the CA that signs it.
  if (options.notAfter === undefined && notAfter > ca.cert.notAfter) notAfter = ca.cert.notAfter;

  const keys = await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"]);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCa, undefined, true),
    new x509.KeyUsagesExtension(
      usage === "ca"
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.SubjectAlternativeNameExtension(
      [spiffeId, ...(options.extraUriSans ?? [])].map((value) => ({ type: "url" as const, value })),
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
  ];
  if (usage === "leaf") {
    extensions.push(
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    );
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ O: ["spike"] }],
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: SIGN_ALG,
    extensions,
  });
  return Object.freeze({
    spiffeId,
    certChainPem: pemWithNewline(cert.toString("pem")),
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
    trustBundlePem: caCertPem,
  });
}

/** 16 random bytes with the top bit clear: a positive, unguessable serial. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function exportPrivateKeyPem(key: CryptoKey): Promise<Uint8Array> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  try {
    return new TextEncoder().encode(pemWithNewline(x509.PemConverter.encode(der, "PRIVATE KEY")));
  } finally {
    // Best effort: the base64 string made above cannot be wiped in JS.
    der.fill(0);
  }
}

function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === "url").map((n) => n.value) : [];
}

function pemWithNewline(pem: string): string {
  const normalized = pem.replace(/\r\n/g, "\n");
  return normalized.endsWith("\n") ? normalized : `${normalized}\n`;
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Creates `dir` (and parents) if missing; a directory we create is mode 0700. */
async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) throw new Error(`${dir} exists and is not a directory`);
    return;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask; make it exact.
  await Deno.chmod(dir, 0o700);
}

/** Writes `data` to a temporary file next to `path`, then renames it into place. */
async function writeFileAtomic(path: string, data: Uint8Array, mode: number): Promise<void> {
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
  const tmp = `${path}.${suffix}.tmp`;
  try {
    await Deno.writeFile(tmp, data, { mode, createNew: true });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
