/**
 * The policy list made ready for authorization, once per policy generation:
 * every pattern compiled once, and the policies indexed by the literal
 * prefix of their SPIFFE ID and path patterns, so a request tests the
 * regexes of the few policies that could match it instead of all of them.
 *
 * The answer must be exactly that of testing every policy in turn;
 * `compiled_policy_set_test.ts` checks that as a property against a plain
 * scan with freshly compiled regexes.
 *
 * @module
 */
import { type Permission, PERMISSIONS } from "../api/validate.ts";
import type { PolicyRecord } from "../store/types.ts";
import { compilePattern, type PatternMatcher } from "./linear_regex.ts";
import { isAnchored, literalPrefix } from "./pattern_shape.ts";
import { PrefixIndex } from "./prefix_index.ts";

/** One policy, compiled. Policies with a pattern that does not compile are left out: they grant nothing. */
interface CompiledPolicy {
  /** Granted permissions as bits ({@linkcode permissionBits}); `super` sets them all. */
  readonly granted: number;
  /** Literal text every SPIFFE ID this policy matches starts with (`""`: unknown). */
  readonly idPrefix: string;
  /** Literal text every path this policy matches starts with (`""`: unknown). */
  readonly pathPrefix: string;
  readonly id: PatternMatcher;
  readonly path: PatternMatcher;
  /**
   * The path pattern matched against the whole path (`^(?:…)$`), for strict
   * checks; `null` when the ID pattern is not anchored at both ends (strict
   * checks skip the policy) or the wrapped pattern does not compile.
   */
  readonly wholePath: PatternMatcher | null;
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

/** The policies of one generation, compiled and indexed. Immutable; shared by all requests. */
export class CompiledPolicySet {
  /** The policy records this set was built from, frozen. */
  readonly records: readonly PolicyRecord[];
  /** Policies that can grant something (their patterns compile). */
  readonly size: number;
  readonly #byId: PrefixIndex<CompiledPolicy>;
  readonly #byPath: PrefixIndex<CompiledPolicy>;

  /**
   * Compiles every policy of `records`. A pattern shared by several policies
   * is compiled once. Cost grows with the number of policies; it is paid
   * once per policy generation, not per request.
   */
  constructor(records: readonly PolicyRecord[]) {
    this.records = Object.isFrozen(records) ? records : Object.freeze([...records]);
    const compiled = new Map<string, PatternMatcher | null>();
    const compile = (source: string) => {
      let matcher = compiled.get(source);
      if (matcher === undefined) {
        matcher = compilePattern(source);
        compiled.set(source, matcher);
      }
      return matcher;
    };
    const policies: CompiledPolicy[] = [];
    for (const record of records) {
      const id = compile(record.spiffeIdPattern);
      const path = compile(record.pathPattern);
      if (!id || !path) continue;
      policies.push({
        granted: permissionBits(record.permissions),
        idPrefix: literalPrefix(record.spiffeIdPattern),
        pathPrefix: literalPrefix(record.pathPattern),
        id,
        path,
        wholePath: isAnchored(record.spiffeIdPattern) ? compile(`^(?:${record.pathPattern})$`) : null,
      });
    }
    this.size = policies.length;
    this.#byId = new PrefixIndex(policies, (p) => p.idPrefix);
    this.#byPath = new PrefixIndex(policies, (p) => p.pathPrefix);
  }

  /**
   * True when some policy grants every permission in `wanted` to
   * `spiffeId` on `path`. Only the policies whose literal prefixes start
   * both the ID and the path are tested: the index of the two dimensions
   * that leaves fewer candidates picks them, the other prefix is then
   * checked with `startsWith` before any regex runs.
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
        if (mode.strict && policy.wholePath === null) continue;
        if (!policy.id.test(spiffeId)) continue;
        if (!(mode.strict ? policy.wholePath! : policy.path).test(path)) continue;
        return true;
      }
    }
    return false;
  }
}
