/**
 * X.509-SVID validation of a TLS peer: exactly one URI SAN holding a valid
 * SPIFFE ID, a leaf that cannot sign certificates, every certificate within
 * its validity period, and a signature chain ending at a CA of the trust
 * bundle. No hostname checks: authorization is by SPIFFE ID, afterwards.
 *
 * Validation is synchronous (signatures are checked with `node:crypto`), so it
 * can run inside TLS event handlers without extra scheduling.
 *
 * @module
 */

import { createHash, X509Certificate as NodeX509Certificate } from "node:crypto";
import { type CertFields, KeyUsage, readCertFields } from "./cert_fields.ts";
import { checkTrustDomainName, parseSpiffeId } from "./id.ts";
import { SpiffeIdError, SvidError } from "./errors.ts";
import { pemToDerList } from "./pem.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";

/** What a successful validation tells about the peer. */
export interface ValidatedSvid {
  /** The peer's SPIFFE ID (canonical string form). */
  readonly spiffeId: string;
  /** Its trust domain. */
  readonly trustDomain: string;
  /** Earliest `notAfter` on the verified path: the result is stale after this. */
  readonly notAfter: Date;
  /** Latest `notBefore` on the verified path. */
  readonly notBefore: Date;
}

/**
 * A certificate as `node:tls` reports it: `getPeerCertificate(true)`
 * (a `DetailedPeerCertificate`) or `getPeerX509Certificate()`; both expose
 * the DER bytes as `raw` and may link the issuer as `issuerCertificate`.
 */
export interface PeerCertificateLike {
  /** DER bytes; absent (or the object empty) when the peer sent no certificate. */
  readonly raw?: Uint8Array;
  /** The next certificate up the chain, if known; self-signed roots point at themselves. */
  readonly issuerCertificate?: PeerCertificateLike;
}

/** The peer chain, leaf first: DER certificates, or what `node:tls` returns. */
export type PeerChainInput = readonly Uint8Array[] | PeerCertificateLike | null | undefined;

/** How many verified chains a bundle remembers. */
const VERIFIED_CACHE_LIMIT = 1024;

/** Longest chain accepted (leaf, intermediates, root). */
const MAX_CHAIN_LENGTH = 8;

interface ParsedCert {
  readonly der: Uint8Array;
  /** Validity, CA flag, key usage and URI SANs, read from the DER. */
  readonly fields: CertFields;
  /** For names and signatures. */
  readonly node: NodeX509Certificate;
  readonly isCa: boolean;
  readonly keyUsage: number | undefined;
}

interface TrustAnchor extends ParsedCert {
  /** The trust domain this CA may vouch for, or undefined when it does not say. */
  readonly trustDomain: string | undefined;
}

/**
 * CA certificates trusted to issue peer SVIDs, parsed once and reused for
 * every handshake. Build one with {@linkcode parseTrustBundle} or
 * {@linkcode trustBundleFromMap}.
 */
export class TrustBundle {
  readonly #anchors: readonly TrustAnchor[];
  /**
   * Chains that already passed every check, by a hash of their exact bytes.
   * Parsing and signature checks dominate a handshake; a chain's bytes fix
   * its verdict except for time, which is checked again on every hit.
   */
  readonly #verified = new Map<string, ValidatedSvid>();

  private constructor(anchors: TrustAnchor[]) {
    this.#anchors = Object.freeze(anchors);
  }

  /** Number of CA certificates in the bundle. */
  get size(): number {
    return this.#anchors.length;
  }

  /** The CA certificates, as DER. */
  get certificates(): Uint8Array[] {
    return this.#anchors.map((a) => a.der.slice());
  }

  /** @internal Anchors for {@linkcode validatePeerSvid}. */
  anchors(): readonly TrustAnchor[] {
    return this.#anchors;
  }

  /** @internal A cached verdict for `key` if it holds at `now`. */
  cached(key: string, now: Date): ValidatedSvid | undefined {
    const hit = this.#verified.get(key);
    if (!hit) return undefined;
    const t = now.getTime();
    return t >= hit.notBefore.getTime() && t <= hit.notAfter.getTime() ? hit : undefined;
  }

  /** @internal Remembers a verdict (bounded; the oldest entry goes first). */
  remember(key: string, verdict: ValidatedSvid): void {
    if (this.#verified.size >= VERIFIED_CACHE_LIMIT) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(key, verdict);
  }

  /** @internal Whether `der` is one of the bundle's CA certificates. */
  isAnchor(der: Uint8Array): boolean {
    return this.#anchors.some((anchor) => constantTimeEqual(anchor.der, der));
  }

  /** @internal Use {@linkcode parseTrustBundle} / {@linkcode trustBundleFromMap}. */
  static create(anchors: TrustAnchor[]): TrustBundle {
    if (anchors.length === 0) throw new Error("trust bundle holds no CA certificate");
    return new TrustBundle(anchors);
  }
}

/**
 * Parses a PEM trust bundle (one or more `CERTIFICATE` blocks), or DER
 * certificates. A CA whose certificate carries a `spiffe://<td>` URI SAN
 * (as SPIRE's do) only vouches for IDs in that trust domain; one without
 * such a SAN vouches for any (the bundle's owner chose to trust it).
 *
 * @throws when the bundle holds no certificate or one is not a CA.
 */
export function parseTrustBundle(bundle: string | readonly Uint8Array[]): TrustBundle {
  return TrustBundle.create(decodeBundle(bundle).map((der) => toAnchor(der, undefined)));
}

/**
 * Builds a bundle from per-trust-domain CA sets (the Workload API's
 * `federated_bundles` / `X509BundlesResponse.bundles`): each CA vouches only
 * for its own trust domain, whatever its certificate says.
 */
export function trustBundleFromMap(bundles: Readonly<Record<string, string | readonly Uint8Array[]>>): TrustBundle {
  const anchors: TrustAnchor[] = [];
  for (const [td, bundle] of Object.entries(bundles)) {
    checkTrustDomainName(td);
    for (const der of decodeBundle(bundle)) anchors.push(toAnchor(der, td));
  }
  return TrustBundle.create(anchors);
}

/**
 * Turns what `node:tls` reports into DER certificates, leaf first, by
 * following `issuerCertificate` links (bounded; stops at a self-signed root).
 */
export function peerChainToDer(input: PeerChainInput): Uint8Array[] {
  if (input === null || input === undefined) return [];
  if (Array.isArray(input)) return [...(input as readonly Uint8Array[])];
  const chain: Uint8Array[] = [];
  const seen = new Set<PeerCertificateLike>();
  let cert: PeerCertificateLike | undefined = input as PeerCertificateLike;
  while (cert !== undefined && !seen.has(cert) && chain.length < MAX_CHAIN_LENGTH) {
    const raw = cert.raw;
    if (!(raw instanceof Uint8Array) || raw.length === 0) break;
    if (chain.some((c) => constantTimeEqual(c, raw))) break;
    chain.push(raw);
    seen.add(cert);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * Validates a peer's X.509-SVID chain (leaf first) against `bundle` at time
 * `now`, returning the peer's SPIFFE ID.
 *
 * Certificates in the chain after the leaf are only candidate
 * intermediates: trust comes from the bundle alone.
 *
 * @throws {SvidError} whose `reason` names the failed check.
 */
export function validatePeerSvid(chain: PeerChainInput, bundle: TrustBundle | string, now: Date): ValidatedSvid {
  const trust = typeof bundle === "string" ? parseTrustBundle(bundle) : bundle;
  const ders = peerChainToDer(chain);
  if (ders.length === 0) throw new SvidError("no_certificate", "peer presented no certificate");
  if (ders.length > MAX_CHAIN_LENGTH) {
    throw new SvidError("malformed_certificate", `peer chain longer than ${MAX_CHAIN_LENGTH} certificates`);
  }
  const key = chainKey(ders);
  const hit = trust.cached(key, now);
  if (hit) return hit;
  // A peer (Deno's TLS included) may list the trust anchor itself after the
  // leaf; it adds nothing the bundle lacks, so don't parse it again.
  const candidates = ders.filter((der, i) => i === 0 || !trust.isAnchor(der));
  const [leaf, ...intermediates] = candidates.map((der, i) => parseCert(der, i === 0 ? "leaf" : `chain[${i}]`));

  const spiffeId = leafSpiffeId(leaf!);
  if (leaf!.isCa) throw new SvidError("leaf_is_ca", `leaf certificate of ${spiffeId} is a CA (CA:TRUE)`);
  checkLeafKeyUsage(leaf!, spiffeId);
  checkValidity(leaf!, now, `leaf certificate of ${spiffeId}`);

  const path = findPath(leaf!, intermediates, trust.anchors(), spiffeId.trustDomain, now);
  const verdict = Object.freeze({
    spiffeId: spiffeId.toString(),
    trustDomain: spiffeId.trustDomain,
    notAfter: new Date(Math.min(...path.map((c) => c.fields.notAfter.getTime()))),
    notBefore: new Date(Math.max(...path.map((c) => c.fields.notBefore.getTime()))),
  });
  trust.remember(key, verdict);
  return verdict;
}

/** SHA-256 over the chain's certificates, each length-prefixed. */
function chainKey(ders: readonly Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const der of ders) {
    hash.update(String(der.length) + ":");
    hash.update(der);
  }
  return hash.digest("hex");
}

// ---------------------------------------------------------------------------

function decodeBundle(bundle: string | readonly Uint8Array[]): Uint8Array[] {
  if (typeof bundle !== "string") return [...bundle];
  return pemToDerList(bundle, "CERTIFICATE");
}

function toAnchor(der: Uint8Array, trustDomain: string | undefined): TrustAnchor {
  const parsed = parseCert(der, "trust bundle certificate");
  if (!parsed.isCa) throw new Error(`trust bundle certificate ${subjectOf(parsed)} is not a CA`);
  return { ...parsed, trustDomain: trustDomain ?? anchorTrustDomain(parsed) };
}

/** The trust domain named by a CA's `spiffe://<td>` URI SAN, if it has exactly one. */
function anchorTrustDomain(ca: ParsedCert): string | undefined {
  const tds = new Set<string>();
  for (const uri of ca.fields.uriSans) {
    try {
      tds.add(parseSpiffeId(uri).trustDomain);
    } catch {
      // A non-SPIFFE URI on a CA says nothing about trust domains.
    }
  }
  return tds.size === 1 ? [...tds][0] : undefined;
}

function parseCert(der: Uint8Array, what: string): ParsedCert {
  try {
    // Both parsers must accept the bytes: ours reads the fields node does not expose, node checks signatures.
    const fields = readCertFields(der);
    const node = new NodeX509Certificate(der);
    return { der, fields, node, isCa: fields.isCa, keyUsage: fields.keyUsage };
  } catch (err) {
    throw new SvidError("malformed_certificate", `${what} is not a valid X.509 certificate: ${errorText(err)}`);
  }
}

/** The subject as one line, for messages. */
function subjectOf(c: ParsedCert): string {
  return c.node.subject.split("\n").join(", ");
}

function leafSpiffeId(leaf: ParsedCert) {
  const uris = leaf.fields.uriSans;
  if (uris.length !== 1) {
    throw new SvidError("uri_san_count", `leaf certificate has ${uris.length} URI SANs; an X.509-SVID has exactly one`);
  }
  try {
    return parseSpiffeId(uris[0]!);
  } catch (err) {
    const reason = err instanceof SpiffeIdError ? err.message : errorText(err);
    throw new SvidError("invalid_spiffe_id", `leaf certificate URI SAN is not a SPIFFE ID: ${reason}`);
  }
}

function checkLeafKeyUsage(leaf: ParsedCert, id: { toString(): string }): void {
  const usage = leaf.keyUsage;
  if (usage === undefined || (usage & KeyUsage.digitalSignature) === 0) {
    throw new SvidError("bad_key_usage", `leaf certificate of ${id} lacks the digitalSignature key usage`);
  }
  if ((usage & (KeyUsage.keyCertSign | KeyUsage.cRLSign)) !== 0) {
    throw new SvidError("bad_key_usage", `leaf certificate of ${id} has keyCertSign or cRLSign key usage`);
  }
}

function checkValidity(c: ParsedCert, now: Date, what: string): void {
  const t = now.getTime();
  if (t < c.fields.notBefore.getTime()) {
    throw new SvidError("not_yet_valid", `${what} is not valid before ${c.fields.notBefore.toISOString()}`);
  }
  if (t > c.fields.notAfter.getTime()) {
    throw new SvidError("expired", `${what} expired at ${c.fields.notAfter.toISOString()}`);
  }
}

/** True when `issuer` signed `child` (names match and the signature verifies). */
function issuedBy(child: ParsedCert, issuer: ParsedCert): boolean {
  try {
    return child.node.checkIssued(issuer.node) && child.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}

function canSign(ca: ParsedCert): boolean {
  return ca.isCa && (ca.keyUsage === undefined || (ca.keyUsage & KeyUsage.keyCertSign) !== 0);
}

/**
 * Depth-first search from the leaf up through the peer's intermediates to a
 * trust anchor. Returns the path (leaf … anchor). Bounded by the chain
 * length, since each intermediate is used at most once.
 */
function findPath(
  leaf: ParsedCert,
  intermediates: ParsedCert[],
  anchors: readonly TrustAnchor[],
  trustDomain: string,
  now: Date,
): ParsedCert[] {
  // Remember the most telling failure: an expired CA on an otherwise good
  // path explains more than "untrusted".
  let validityError: SvidError | undefined;
  // Signature checks are the costly step and a hostile peer controls the
  // intermediates, so each (child, issuer) pair is verified at most once.
  const verdicts = new Map<ParsedCert, Map<ParsedCert, boolean>>();
  const signedBy = (child: ParsedCert, issuer: ParsedCert): boolean => {
    let row = verdicts.get(child);
    if (row === undefined) verdicts.set(child, row = new Map());
    let verdict = row.get(issuer);
    if (verdict === undefined) row.set(issuer, verdict = canSign(issuer) && issuedBy(child, issuer));
    return verdict;
  };

  const walk = (current: ParsedCert, path: ParsedCert[], used: Set<ParsedCert>): ParsedCert[] | undefined => {
    for (const anchor of anchors) {
      if (anchor.trustDomain !== undefined && anchor.trustDomain !== trustDomain) continue;
      if (!signedBy(current, anchor)) continue;
      try {
        checkValidity(anchor, now, `trust bundle CA ${subjectOf(anchor)}`);
      } catch (err) {
        validityError ??= err as SvidError;
        continue;
      }
      return [...path, anchor];
    }
    for (const next of intermediates) {
      if (used.has(next) || !signedBy(current, next)) continue;
      try {
        checkValidity(next, now, `intermediate CA ${subjectOf(next)}`);
      } catch (err) {
        validityError ??= err as SvidError;
        continue;
      }
      const found = walk(next, [...path, next], new Set([...used, next]));
      if (found) return found;
    }
    return undefined;
  };

  const found = walk(leaf, [leaf], new Set());
  if (found) return found;
  throw validityError ??
    new SvidError(
      "untrusted_chain",
      `certificate chain does not verify to a trusted CA of trust domain ${trustDomain}`,
    );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
