/**
 * Decides whether a caller may act on a path: the single place where
 * SPIKE's authorization rules live (superuser bypass, policy matching,
 * reserved system paths). Default deny.
 *
 * @module
 */
import type { Permission } from "../api/validate.ts";
import type { PolicyRecord } from "../store/types.ts";
import type { PatternMatcher, RegexCache } from "./linear_regex.ts";

/** Reserved path guarding the policy API. */
export const ACL_PATH = "spike/system/acl";
/** Reserved path guarding the secret listing. */
export const SECRET_LIST_PATH = "spike/system/secret";
/** Reserved path guarding the cipher API. */
export const CIPHER_PATH = "spike/system/cipher/exec";

const RESERVED_PATHS: ReadonlySet<string> = new Set([ACL_PATH, SECRET_LIST_PATH, CIPHER_PATH]);

/** What the authorizer needs to know about the caller. */
export interface Caller {
  /** The authenticated SPIFFE ID. */
  readonly spiffeId: string;
  /** Whether the caller is the Pilot superuser (bypasses policies). */
  readonly superuser: boolean;
}

/**
 * Returns true when any policy grants `caller` every permission in `wanted`
 * on `path`. Patterns are compiled through `cache` (linear-time engine).
 *
 * A pattern stored before a rule change that no longer compiles is treated
 * as matching nothing: a broken policy can deny, never grant.
 */
export function isAllowed(
  caller: Caller,
  path: string,
  wanted: readonly Permission[],
  policies: readonly PolicyRecord[],
  cache: RegexCache,
): boolean {
  if (caller.superuser) return true;
  const reserved = RESERVED_PATHS.has(path);
  for (const policy of policies) {
    if (!grantsAll(policy.permissions, wanted)) continue;
    if (reserved && !isAnchored(policy.spiffeIdPattern)) continue;
    const idPattern = compileOrNull(cache, policy.spiffeIdPattern);
    const pathPattern = compileOrNull(cache, policy.pathPattern);
    if (!idPattern || !pathPattern) continue;
    if (!idPattern.test(caller.spiffeId)) continue;
    if (reserved ? !fullMatch(cache, policy.pathPattern, path) : !pathPattern.test(path)) continue;
    return true;
  }
  return false;
}

function grantsAll(granted: readonly Permission[], wanted: readonly Permission[]): boolean {
  if (granted.includes("super")) return true;
  return wanted.every((p) => granted.includes(p));
}

/**
 * A SPIFFE ID pattern is anchored when every top-level alternative pins both
 * ends of the ID: `^a$|.*$` starts with `^` and ends with `$`, yet its second
 * branch matches any ID.
 */
export function isAnchored(source: string): boolean {
  return topLevelAlternatives(source).every((branch) => branch.startsWith("^") && endsWithAnchor(branch));
}

/** Splits `source` at the `|` that are outside groups, classes and escapes. */
function topLevelAlternatives(source: string): string[] {
  const branches: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      i++;
    } else if (inClass) {
      if (c === "]") inClass = false;
    } else if (c === "[") {
      inClass = true;
    } else if (c === "(") {
      depth++;
    } else if (c === ")") {
      depth = Math.max(0, depth - 1);
    } else if (c === "|" && depth === 0) {
      branches.push(source.slice(start, i));
      start = i + 1;
    }
  }
  branches.push(source.slice(start));
  return branches;
}

/** True when `branch` ends in a `$` that is not escaped (an even run of `\\` before it). */
function endsWithAnchor(branch: string): boolean {
  if (!branch.endsWith("$")) return false;
  let backslashes = 0;
  for (let i = branch.length - 2; i >= 0 && branch[i] === "\\"; i--) backslashes++;
  return backslashes % 2 === 0;
}

/** Whole-string match, via an explicitly anchored (and cached) variant. */
function fullMatch(cache: RegexCache, source: string, text: string): boolean {
  const anchored = compileOrNull(cache, `^(?:${source})$`);
  return anchored !== null && anchored.test(text);
}

function compileOrNull(cache: RegexCache, source: string): PatternMatcher | null {
  try {
    return cache.get(source, "pattern");
  } catch {
    return null;
  }
}
