/**
 * The policy list made ready for authorization, once per policy generation:
 * every pattern compiled once, and the policies indexed by the literal
 * prefix of their SPIFFE ID and path patterns, so a request tests the
 * regexes of the few policies that could match it instead of all of them.
 * Policies the index cannot narrow down (an unanchored pattern, top-level
 * alternation) are checked on every request, most of them by one
 * `includes` of the literal text their regex needs.
 *
 * The answer must be exactly that of testing every policy in turn;
 * `compiled_policy_set_test.ts` checks that as a property against a plain
 * scan with freshly compiled regexes.
 *
 * @module
 */
import { type Permission, PERMISSIONS } from "../api/validate.ts";
import type { PolicyRecord } from "../store/types.ts";
import { CompiledPattern } from "./compiled_pattern.ts";
import type { PatternMatcher } from "./linear_regex.ts";
import { PrefixIndex } from "./prefix_index.ts";

/** One policy, compiled. Policies with a pattern that does not compile are left out: they grant nothing. */
interface CompiledPolicy {
  /** Granted permissions as bits ({@linkcode permissionBits}); `super` sets them all. */
  readonly granted: number;
  /** Literal text every SPIFFE ID this policy matches starts with (`""`: unknown). */
  readonly idPrefix: string;
  /** Literal text every path this policy matches starts with (`""`: unknown). */
  readonly pathPrefix: string;
  /** Literal text every matching SPIFFE ID contains, checked before the regex (`""`: nothing to check). */
  readonly idNeeds: string;
  /** Literal text every matching path contains, checked before the regex (`""`: nothing to check). */
  readonly pathNeeds: string;
  /** Whether the SPIFFE ID pattern is anchored at both ends (strict checks skip the others). */
  readonly idAnchored: boolean;
  readonly id: PatternMatcher;
  readonly path: PatternMatcher;
  /** The path pattern, for its whole-path matcher (strict checks). */
  readonly pathPattern: CompiledPattern;
}

/**
 * The paths one caller may reach with some permission, as far as the
 * policies say (see {@linkcode CompiledPolicySet.pathScope}).
 */
export interface PathScope {
  /**
   * Literal prefixes every granted path starts with (one of them), or
   * `undefined` when a granting policy's path pattern has no literal prefix
   * (any path may be granted). Empty: nothing is granted.
   */
  readonly prefixes: readonly string[] | undefined;
  /** Whether `path` is granted. */
  test(path: string): boolean;
}

/** How a request is matched against a policy. */
export interface MatchMode {
  /**
   * Strict matching: only policies whose SPIFFE ID pattern is anchored at
   * both ends count, and their path pattern must match the whole path.
   */
  readonly strict: boolean;
}

const ALL_BITS = (1 << PERMISSIONS.length) - 1;

/** `permissions` as bits, one per entry of `PERMISSIONS`; `super` grants every bit. */
function permissionBits(permissions: readonly Permission[]): number {
  let bits = 0;
  for (const permission of permissions) {
    if (permission === "super") return ALL_BITS;
    const index = PERMISSIONS.indexOf(permission);
    if (index >= 0) bits |= 1 << index;
  }
  return bits;
}

/**
 * The policies of one generation, compiled and indexed; shared by all
 * requests. Nothing in it changes after construction but the whole-path
 * matchers, compiled on first use.
 */
export class CompiledPolicySet {
  /** The policy records this set was built from, frozen. */
  readonly records: readonly PolicyRecord[];
  /** Policies that can grant something (their patterns compile). */
  readonly size: number;
  /** Every pattern source of this generation, compiled (the next generation takes them over). */
  readonly #patterns: ReadonlyMap<string, CompiledPattern>;
  readonly #byId: PrefixIndex<CompiledPolicy>;
  readonly #byPath: PrefixIndex<CompiledPolicy>;

  /**
   * Compiles every policy of `records`. A pattern shared by several policies
   * is compiled once, and patterns already compiled by `previous` (the set
   * of the generation before) are taken over, so a change of one policy
   * among thousands compiles one or two patterns, not all of them.
   */
  constructor(records: readonly PolicyRecord[], previous?: CompiledPolicySet) {
    this.records = Object.isFrozen(records) ? records : Object.freeze([...records]);
    const known = previous && previous.#patterns;
    const patterns = new Map<string, CompiledPattern>();
    const compile = (source: string) => {
      let pattern = patterns.get(source);
      if (pattern === undefined) {
        pattern = known?.get(source) ?? new CompiledPattern(source);
        patterns.set(source, pattern);
      }
      return pattern;
    };
    const policies: CompiledPolicy[] = [];
    for (const record of records) {
      const id = compile(record.spiffeIdPattern);
      const path = compile(record.pathPattern);
      if (!id.matcher || !path.matcher) continue;
      policies.push({
        granted: permissionBits(record.permissions),
        idPrefix: id.prefix,
        pathPrefix: path.prefix,
        idNeeds: id.needs,
        pathNeeds: path.needs,
        idAnchored: id.anchored,
        id: id.matcher,
        path: path.matcher,
        pathPattern: path,
      });
    }
    this.#patterns = patterns;
    this.size = policies.length;
    this.#byId = new PrefixIndex(policies, (p) => p.idPrefix);
    this.#byPath = new PrefixIndex(policies, (p) => p.pathPrefix);
  }

  /**
   * The paths some policy grants `spiffeId` at least one of `anyOf` on
   * (non-strict matching, as for ordinary secret paths) [ours]. The
   * policies whose SPIFFE ID pattern matches are found once, here; `test`
   * then only tries their path patterns, and `prefixes` tells a listing
   * which ranges of the path space can hold granted paths at all, so it
   * never has to look at the others. `test(path)` is exactly "`grants`
   * with some single permission of `anyOf`".
   */
  pathScope(spiffeId: string, anyOf: readonly Permission[]): PathScope {
    const any = permissionBits(anyOf);
    const candidates: CompiledPolicy[] = [];
    for (const group of this.#byId.lookup(spiffeId).groups) {
      for (const policy of group) {
        if ((policy.granted & any) === 0) continue;
        if (!spiffeId.includes(policy.idNeeds) || !policy.id.test(spiffeId)) continue;
        candidates.push(policy);
      }
    }
    const prefixes = candidates.some((p) => p.pathPrefix === "")
      ? undefined
      : [...new Set(candidates.map((p) => p.pathPrefix))];
    return {
      prefixes,
      test: (path) =>
        candidates.some((p) => path.startsWith(p.pathPrefix) && path.includes(p.pathNeeds) && p.path.test(path)),
    };
  }

  /**
   * True when some policy grants every permission in `wanted` to
   * `spiffeId` on `path`. Only the policies whose literal prefixes start
   * both the ID and the path are tested: the index of the two dimensions
   * that leaves fewer candidates picks them, the other prefix is then
   * checked with `startsWith`, and the literal text a regex needs with
   * `includes`, before any regex runs.
   */
  grants(spiffeId: string, path: string, wanted: readonly Permission[], mode: MatchMode): boolean {
    const want = permissionBits(wanted);
    const byId = this.#byId.lookup(spiffeId);
    const byPath = this.#byPath.lookup(path);
    const idFirst = byId.count <= byPath.count;
    for (const group of idFirst ? byId.groups : byPath.groups) {
      for (const policy of group) {
        if ((policy.granted & want) !== want) continue;
        if (idFirst ? !path.startsWith(policy.pathPrefix) : !spiffeId.startsWith(policy.idPrefix)) continue;
        if (mode.strict && !policy.idAnchored) continue;
        if (!spiffeId.includes(policy.idNeeds) || !path.includes(policy.pathNeeds)) continue;
        if (!policy.id.test(spiffeId)) continue;
        const pathMatcher = mode.strict ? policy.pathPattern.whole : policy.path;
        if (!pathMatcher?.test(path)) continue;
        return true;
      }
    }
    return false;
  }
}
