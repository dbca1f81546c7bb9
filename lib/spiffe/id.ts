/**
 * SPIFFE ID parsing and validation (`spiffe://<trust-domain>/<path>`).
 *
 * The rules are the strict ones of the SPIFFE ID standard: a lowercase
 * `spiffe` scheme, a trust domain of `[a-z0-9._-]`, path segments of
 * `[a-zA-Z0-9._-]` with no empty, `.` or `..` segment, no query, fragment,
 * port or userinfo, and at most 2048 bytes in all.
 *
 * @module
 */

import { SpiffeIdError } from "./errors.ts";

/** A parsed, valid SPIFFE ID. */
export interface SpiffeId {
  /** The trust domain name, e.g. `spike.ist`. */
  readonly trustDomain: string;
  /** The path including its leading `/`, or `""` for a trust domain ID. */
  readonly path: string;
  /** The canonical string form, `spiffe://<trustDomain><path>`. */
  toString(): string;
}

/** Longest SPIFFE ID accepted, in bytes (UTF-8). */
export const MAX_SPIFFE_ID_BYTES = 2048;

const SCHEME = "spiffe://";
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_CHAR = /^[a-zA-Z0-9._-]$/;

/**
 * Parses and validates a SPIFFE ID.
 *
 * @throws {SpiffeIdError} naming the broken rule when `s` is not valid.
 */
export function parseSpiffeId(s: string): SpiffeId {
  if (typeof s !== "string") throw new SpiffeIdError(String(s), "not a string");
  if (s.length === 0) throw new SpiffeIdError(s, "empty");
  if (new TextEncoder().encode(s).length > MAX_SPIFFE_ID_BYTES) {
    throw new SpiffeIdError(s, `longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  }
  if (!s.startsWith(SCHEME)) {
    const reason = s.toLowerCase().startsWith(SCHEME)
      ? 'scheme must be lowercase "spiffe"'
      : "scheme must be spiffe://";
    throw new SpiffeIdError(s, reason);
  }
  if (s.includes("?")) throw new SpiffeIdError(s, "query is not allowed");
  if (s.includes("#")) throw new SpiffeIdError(s, "fragment is not allowed");

  const rest = s.slice(SCHEME.length);
  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);

  checkTrustDomain(s, trustDomain);
  checkPath(s, path);

  const text = SCHEME + trustDomain + path;
  return Object.freeze({ trustDomain, path, toString: () => text });
}

/** True when `s` is a valid SPIFFE ID (never throws). */
export function isSpiffeId(s: string): boolean {
  try {
    parseSpiffeId(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a bare trust domain name (`spike.ist`), as used in trust root
 * lists and bundle maps.
 *
 * @throws {SpiffeIdError} when the name is not a valid trust domain.
 */
export function checkTrustDomainName(name: string): string {
  checkTrustDomain(SCHEME + name, name);
  return name;
}

function checkTrustDomain(input: string, td: string): void {
  if (td.length === 0) throw new SpiffeIdError(input, "trust domain is empty");
  if (td.includes("@")) throw new SpiffeIdError(input, "userinfo is not allowed");
  if (td.includes(":")) throw new SpiffeIdError(input, "port is not allowed");
  for (const ch of td) {
    if (TRUST_DOMAIN_CHAR.test(ch)) continue;
    const reason = ch !== ch.toLowerCase()
      ? "trust domain must be lowercase"
      : `trust domain has invalid character ${JSON.stringify(ch)}`;
    throw new SpiffeIdError(input, reason);
  }
}

function checkPath(input: string, path: string): void {
  if (path === "") return;
  // path starts with "/", so the first split element is always "".
  const segments = path.split("/").slice(1);
  segments.forEach((segment, i) => {
    if (segment === "") {
      const reason = i === segments.length - 1 ? "path has a trailing slash" : "path has an empty segment";
      throw new SpiffeIdError(input, reason);
    }
    if (segment === "." || segment === "..") {
      throw new SpiffeIdError(input, `path has a ${JSON.stringify(segment)} segment`);
    }
    for (const ch of segment) {
      if (!PATH_CHAR.test(ch)) {
        throw new SpiffeIdError(input, `path has invalid character ${JSON.stringify(ch)}`);
      }
    }
  });
}
