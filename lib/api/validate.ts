/**
 * Validators for the values clients send. Each returns the value typed, or
 * throws a 400 `ApiError` whose detail names the field (never its content
 * when the field could be secret).
 *
 * @module
 */
import { decodeBase64 } from "./base64.ts";
import { ConfigError, parseDuration } from "../config/parse.ts";
import { storableText } from "../store/storable_text.ts";
import { badRequest } from "./errors.ts";

/** Permissions a policy can grant. */
export const PERMISSIONS = ["read", "write", "list", "execute", "super"] as const;
/** One policy permission. */
export type Permission = typeof PERMISSIONS[number];

const SECRET_PATH = /^[a-zA-Z0-9._\-/()?+*|[\]{}\\]+$/;
const NAME = /^[a-zA-Z0-9\-_ ]+$/;

/** Largest accepted secret version number (fits a SQLite/Postgres integer). */
export const MAX_VERSION = 2 ** 31 - 1;

/** Validates a secret path: 1–500 characters from the contract's set. */
export function secretPath(value: unknown, field = "path"): string {
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  if (value.length < 1 || value.length > 500) throw badRequest(`${field} must be 1-500 characters`);
  if (!SECRET_PATH.test(value)) throw badRequest(`${field} has characters outside the allowed set`);
  return value;
}

/** Validates a listing prefix [ours]: 0–500 characters from the path set (`""`: every path). */
export function pathPrefix(value: unknown, field = "prefix"): string {
  if (value === undefined || value === null || value === "") return "";
  return secretPath(value, field);
}

/** Most paths one batch read names [ours]. */
export const MAX_BATCH_PATHS = 100;

/** Validates the paths of a batch read [ours]: 1–100 valid paths; repeats are read once. */
export function batchPaths(value: unknown, field = "paths"): string[] {
  if (!Array.isArray(value)) throw badRequest(`${field} must be an array of paths`);
  if (value.length === 0) throw badRequest(`${field} must name at least one path`);
  if (value.length > MAX_BATCH_PATHS) throw badRequest(`${field} names more than ${MAX_BATCH_PATHS} paths`);
  return [...new Set(value.map((p, i) => secretPath(p, `${field}[${i}]`)))];
}

/** Largest page a paged secret list returns [ours]. */
export const MAX_LIST_LIMIT = 1000;

/** Validates a page size [ours]: 1–1000, default 100. */
export function listLimit(value: unknown, field = "limit"): number {
  if (value === undefined || value === null) return 100;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_LIST_LIMIT) {
    throw badRequest(`${field} must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
  }
  return value;
}

/** Validates a key name or policy name: 1–250 of `[a-zA-Z0-9-_ ]`. */
export function name(value: unknown, field: string): string {
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  if (value.length < 1 || value.length > 250) throw badRequest(`${field} must be 1-250 characters`);
  if (!NAME.test(value)) throw badRequest(`${field} may only contain letters, digits, '-', '_' and spaces`);
  return value;
}

/** Validates an optional version: absent/null → 0 (current). */
export function optionalVersion(value: unknown, field = "version"): number {
  if (value === undefined || value === null) return 0;
  return version(value, field);
}

/**
 * Validates an optional check-and-set version [ours]: absent/null →
 * `undefined` (no check), else a version number (0 = "no current version").
 */
export function optionalCas(value: unknown, field = "cas"): number | undefined {
  if (value === undefined || value === null) return undefined;
  return version(value, field);
}

/** Validates a version number 0..MAX_VERSION. */
export function version(value: unknown, field = "version"): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_VERSION) {
    throw badRequest(`${field} must be a whole number from 0 to ${MAX_VERSION}`);
  }
  return value;
}

/** Validates a list of versions (absent/null → []), at most 1000 entries. */
export function versionList(value: unknown, field = "versions"): number[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw badRequest(`${field} must be an array of numbers`);
  if (value.length > 1000) throw badRequest(`${field} has more than 1000 entries`);
  return value.map((v, i) => version(v, `${field}[${i}]`));
}

/** Most keys one secret version holds. */
export const MAX_KEYS = 1000;

/** Validates the versions a destroy names [ours]: 1–1000 version numbers, each ≥ 1 (no "current" shorthand). */
export function explicitVersions(value: unknown, field = "versions"): number[] {
  const versions = versionList(value, field);
  if (versions.length === 0) throw badRequest(`${field} must name at least one version`);
  versions.forEach((n, i) => {
    if (n === 0) throw badRequest(`${field}[${i}] must be a version number from 1`);
  });
  return versions;
}

/** Validates a `{key: string}` map of secret values: 1–1000 keys, names per the contract. */
export function secretValues(value: unknown, field = "values"): Record<string, string> {
  const entries = keyEntries(value, field);
  for (const [key, v] of entries) {
    if (typeof v !== "string") throw badRequest(`${field}.${key} must be a string`);
  }
  // fromEntries defines own properties, so a key named `__proto__` stays a key.
  return Object.fromEntries(entries) as Record<string, string>;
}

/**
 * Validates the changes of a patch [ours]: like `secretValues`, but a
 * `null` value (removes that key) is allowed too.
 */
export function secretPatch(value: unknown, field = "values"): Record<string, string | null> {
  const entries = keyEntries(value, field);
  for (const [key, v] of entries) {
    if (typeof v !== "string" && v !== null) throw badRequest(`${field}.${key} must be a string or null`);
  }
  return Object.fromEntries(entries) as Record<string, string | null>;
}

/** The entries of an object of 1–1000 keys named per the contract. */
function keyEntries(value: unknown, field: string): [string, unknown][] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest(`${field} must be an object of strings`);
  }
  const entries = Object.entries(value);
  if (entries.length === 0) throw badRequest(`${field} must have at least one key`);
  if (entries.length > MAX_KEYS) throw badRequest(`${field} has more than ${MAX_KEYS} keys`);
  for (const [key] of entries) name(key, `${field} key`);
  return entries;
}

/** Vault's limits on custom metadata [ours]: keys per secret, bytes per key, bytes per value (UTF-8). */
export const CUSTOM_METADATA_LIMITS = Object.freeze({ keys: 64, keyBytes: 128, valueBytes: 512 });

const utf8 = new TextEncoder();

/**
 * Validates custom metadata [ours]: an object of at most 64 string values,
 * keys of 1–128 bytes and values of at most 512 bytes (UTF-8), both
 * well-formed text without NUL. `{}` is valid (it clears the metadata).
 */
export function customMetadata(value: unknown, field = "customMetadata"): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest(`${field} must be an object of strings`);
  }
  const { keys, keyBytes, valueBytes } = CUSTOM_METADATA_LIMITS;
  const entries = Object.entries(value);
  if (entries.length > keys) throw badRequest(`${field} has more than ${keys} keys`);
  for (const [key, v] of entries) {
    const length = utf8.encode(key).length;
    if (length < 1 || length > keyBytes || !storableText(key)) {
      throw badRequest(`${field} keys must be 1-${keyBytes} bytes of text without NUL`);
    }
    if (typeof v !== "string") throw badRequest(`${field} values must be strings`);
    if (utf8.encode(v).length > valueBytes || !storableText(v)) {
      throw badRequest(`${field} values must be at most ${valueBytes} bytes of text without NUL`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** An expiry as a request gives it [ours]: a time to live from the write, or a point in time. */
export type Expiry = { readonly ttlMs: number } | { readonly at: Date };

/** Longest time to live accepted: 100 years (365-day years). */
export const MAX_TTL_MS = 100 * 365 * 24 * 3_600_000;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * Validates an optional expiry [ours], given either as a time to live
 * (`ttlField`: a Go-style duration such as `"24h"` or `"1h30m"`, or a whole
 * number of seconds; 1 s to 100 years) or as a point in time (`atField`: an
 * RFC 3339 string), not both. Absent (or null) both: `undefined`. Whether
 * the time lies in the future is checked where the clock is.
 */
export function optionalExpiry(
  ttl: unknown,
  at: unknown,
  ttlField = "ttl",
  atField = "expiresAt",
): Expiry | undefined {
  const hasTtl = ttl !== undefined && ttl !== null;
  const hasAt = at !== undefined && at !== null;
  if (hasTtl && hasAt) throw badRequest(`give ${ttlField} or ${atField}, not both`);
  if (hasTtl) return { ttlMs: ttlMillis(ttl, ttlField) };
  if (hasAt) return { at: timestamp(at, atField) };
  return undefined;
}

function ttlMillis(value: unknown, field: string): number {
  let ms: number;
  if (typeof value === "number" && Number.isInteger(value)) ms = value * 1000;
  else if (typeof value === "string") {
    try {
      ms = parseDuration(field, value);
    } catch (error) {
      if (error instanceof ConfigError) throw badRequest(`${field} must be a duration such as 30m, 24h or 1h30m`);
      throw error;
    }
  } else throw badRequest(`${field} must be a duration string (24h) or a whole number of seconds`);
  if (!(ms >= 1000 && ms <= MAX_TTL_MS)) throw badRequest(`${field} must be from 1s to 100 years`);
  return ms;
}

/** Validates an RFC 3339 timestamp (with a time zone). */
export function timestamp(value: unknown, field: string): Date {
  const date = typeof value === "string" && RFC3339.test(value) ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999) {
    throw badRequest(`${field} must be an RFC 3339 time such as 2030-01-02T03:04:05Z`);
  }
  return date;
}

/** Validates a permission list: non-empty, each one known, duplicates removed. */
export function permissions(value: unknown, field = "permissions"): Permission[] {
  if (!Array.isArray(value) || value.length === 0) throw badRequest(`${field} must be a non-empty array`);
  const out = new Set<Permission>();
  for (const p of value) {
    if (typeof p !== "string" || !(PERMISSIONS as readonly string[]).includes(p)) {
      throw badRequest(`${field} may only contain ${PERMISSIONS.join(", ")}`);
    }
    out.add(p as Permission);
  }
  return [...out];
}

/**
 * Validates a regex source string (compiled elsewhere): 1–1000 characters of
 * well-formed text without NUL. A lone UTF-16 surrogate would be stored as
 * U+FFFD (a different pattern than the one accepted), and Postgres text
 * cannot hold NUL at all.
 */
export function patternSource(value: unknown, field: string): string {
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  if (value.length < 1 || value.length > 1000) throw badRequest(`${field} must be 1-1000 characters`);
  if (!storableText(value)) throw badRequest(`${field} must be well-formed text without NUL characters`);
  return value;
}

/** Requires a JSON object body. */
export function object(value: unknown, field = "body"): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest(`${field} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Validates a shard as the wire carries it: an array of 32 integers 0..255. */
export function shardBytes(value: unknown, field = "shard"): Uint8Array {
  if (!Array.isArray(value) || value.length !== 32) throw badRequest(`${field} must be an array of 32 integers`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    const b = value[i];
    if (typeof b !== "number" || !Number.isInteger(b) || b < 0 || b > 255) {
      out.fill(0);
      throw badRequest(`${field} must be an array of 32 integers from 0 to 255`);
    }
    out[i] = b;
  }
  return out;
}

/** Decodes standard base64 (with padding optional), or throws a 400. */
export function base64(value: unknown, field: string): Uint8Array {
  const bytes = typeof value === "string" ? decodeBase64(value) : undefined;
  if (!bytes) throw badRequest(`${field} must be a base64 string`);
  return bytes;
}
