/**
 * The rule a policy's SPIFFE ID pattern must follow: it has to describe
 * SPIFFE IDs. Two questions decide it, both answered from the pattern's
 * automaton rather than its spelling:
 *
 * 1. **Scheme pinned.** Every text the pattern can match starts with
 *    `spiffe://`. This refuses `.*`, `.+`, `example\.org/admin` or `admin$`:
 *    patterns that would admit workloads by a fragment of their ID, or all
 *    of them, without saying so. (`^?spiffe://` before the rest is what
 *    SPIKE's own syntax check demands; this is its meaning, so alternation,
 *    `{n,m}` or classes such as `[^/]` are fine here, and SPIKE's absurd
 *    cases like `spiffe://*` — which can match `spiffe:/` — are not.)
 *    `^spiffe://.*` is accepted: it names the scheme and grants every
 *    workload on purpose, as in SPIKE.
 * 2. **Can match.** Some valid SPIFFE ID makes the pattern match (lowercase
 *    trust domain of `[a-z0-9._-]`, segments of `[a-zA-Z0-9._-]`, no empty,
 *    `.` or `..` segment; length limits are not considered). This refuses
 *    `^x$`, `^spiffe://$` or `^spiffe://Example\.org$`, which could never
 *    grant anything and are most likely typos.
 *
 * Patterns are checked in the dialect policies run in: JavaScript regular
 * expressions without flags, matched anywhere in the ID (`RegExp.test`).
 * Assertions `^`, `$`, `\b` and `\B` are understood exactly for question 2
 * and assumed satisfiable for question 1 (which can only refuse more). A
 * pattern the checker cannot analyse — syntax it does not parse, such as
 * modifier groups `(?m:…)`, or one too large to explore — is refused too:
 * default deny.
 *
 * @module
 */
import { type CharSet, JS } from "refa";
import { badRequest } from "./errors.ts";

/** Why a SPIFFE ID pattern is refused; `undefined` when it is fine. */
export type SpiffeIdPatternProblem =
  | "unparsable"
  | "too_complex"
  | "scheme_not_pinned"
  | "never_matches";

/** An operator-facing sentence for each problem. */
export const SPIFFE_ID_PATTERN_PROBLEMS: Readonly<Record<SpiffeIdPatternProblem, string>> = Object.freeze({
  unparsable: "uses syntax that cannot be checked (modifier groups, lookaround or backreferences)",
  too_complex: "is too large to check",
  scheme_not_pinned: "must only match IDs that start with spiffe:// (e.g. ^spiffe://example\\.org/app$)",
  never_matches: "cannot match any valid SPIFFE ID",
});

const SCHEME = "spiffe://";
/** Upper bounds that keep one check in the low milliseconds whatever the input. */
const MAX_NFA_NODES = 20_000;
const MAX_PRODUCT_STATES = 200_000;

/**
 * Validates a policy's SPIFFE ID pattern, or throws a 400 `ApiError` naming
 * the problem. Costs up to milliseconds: call it after authorization. (Kept
 * out of `validate.ts` so the CLI does not load the parser.)
 */
export function spiffeIdPattern(source: string, field: string): string {
  const problem = spiffeIdPatternProblem(source);
  if (problem) throw badRequest(`${field} ${SPIFFE_ID_PATTERN_PROBLEMS[problem]}`);
  return source;
}

/** True when a policy may use `source` as its SPIFFE ID pattern. */
export function spiffeIdPatternCanMatch(source: string): boolean {
  return spiffeIdPatternProblem(source) === undefined;
}

/** What is wrong with `source` as a SPIFFE ID pattern, or `undefined` when nothing is. */
export function spiffeIdPatternProblem(source: string): SpiffeIdPatternProblem | undefined {
  let nfa: Nfa;
  try {
    nfa = buildNfa(source);
  } catch (error) {
    return error instanceof TooComplex ? "too_complex" : "unparsable";
  }
  const live = liveNodes(nfa);
  if (!live.has(nfa.start)) return "never_matches";
  if (!schemePinned(nfa, live)) return "scheme_not_pinned";
  const found = matchesSomeSpiffeId(nfa, live);
  if (found === undefined) return "too_complex";
  return found ? undefined : "never_matches";
}

// --- the automaton -----------------------------------------------------------

class TooComplex extends Error {}

/** A one-character lookaround (all `^ $ \b \B` become these). */
interface Look {
  readonly to: number;
  readonly ahead: boolean;
  readonly negate: boolean;
  readonly set: CharSet;
}

interface NfaNode {
  readonly empty: number[];
  readonly chars: Array<{ readonly set: CharSet; readonly to: number }>;
  readonly looks: Look[];
}

interface Nfa {
  readonly nodes: NfaNode[];
  readonly start: number;
  readonly accept: number;
}

type Ast = ReturnType<JS.Parser["parse"]>["expression"];
type Concatenation = Ast["alternatives"][number];
type Element = Concatenation["elements"][number];

/** Thompson construction over refa's AST (refa parses the JavaScript dialect, Annex B included). */
function buildNfa(source: string): Nfa {
  const { expression } = JS.Parser.fromLiteral({ source, flags: "" }).parse({
    assertions: "parse",
    backreferences: "throw",
    simplify: false,
  });
  const nodes: NfaNode[] = [];
  const node = (): number => {
    if (nodes.length >= MAX_NFA_NODES) throw new TooComplex();
    nodes.push({ empty: [], chars: [], looks: [] });
    return nodes.length - 1;
  };
  const alternatives = (alts: readonly Concatenation[], from: number): number => {
    const end = node();
    for (const alt of alts) {
      let at = from;
      for (const element of alt.elements) at = elementFrom(element, at);
      nodes[at]!.empty.push(end);
    }
    return end;
  };
  const elementFrom = (element: Element, from: number): number => {
    switch (element.type) {
      case "CharacterClass": {
        const to = node();
        nodes[from]!.chars.push({ set: element.characters, to });
        return to;
      }
      case "Alternation":
        return alternatives(element.alternatives, from);
      case "Assertion": {
        const only = element.alternatives.length === 1 ? element.alternatives[0]!.elements : [];
        const single = only.length === 1 && only[0]!.type === "CharacterClass" ? only[0] : undefined;
        // The linear engine only runs ^ $ \b \B, which refa spells as
        // one-character lookarounds; anything else is not ours to judge.
        if (!single || single.type !== "CharacterClass") throw new Error("unsupported assertion");
        const to = node();
        nodes[from]!.looks.push({
          to,
          ahead: element.kind === "ahead",
          negate: element.negate,
          set: single.characters,
        });
        return to;
      }
      case "Quantifier": {
        let at = from;
        for (let i = 0; i < element.min; i++) at = alternatives(element.alternatives, at);
        if (element.max === Infinity) {
          const loopEnd = alternatives(element.alternatives, at);
          nodes[loopEnd]!.empty.push(at);
          return at;
        }
        const end = node();
        for (let i = element.min; i < element.max; i++) {
          nodes[at]!.empty.push(end);
          at = alternatives(element.alternatives, at);
        }
        nodes[at]!.empty.push(end);
        return end;
      }
      default:
        throw new Error("unsupported element");
    }
  };
  const start = node();
  const accept = alternatives(expression.alternatives, start);
  return { nodes, start, accept };
}

/** Nodes from which `accept` can be reached (assertions assumed satisfiable). */
function liveNodes(nfa: Nfa): Set<number> {
  const incoming: number[][] = nfa.nodes.map(() => []);
  nfa.nodes.forEach((n, from) => {
    for (const to of n.empty) incoming[to]!.push(from);
    for (const l of n.looks) incoming[l.to]!.push(from);
    for (const c of n.chars) if (!c.set.isEmpty) incoming[c.to]!.push(from);
  });
  const live = new Set([nfa.accept]);
  const work = [nfa.accept];
  while (work.length > 0) {
    for (const from of incoming[work.pop()!]!) {
      if (!live.has(from)) {
        live.add(from);
        work.push(from);
      }
    }
  }
  return live;
}

/** Nodes reachable from `seeds` without reading a character (assertions taken as passable). */
function closure(nfa: Nfa, seeds: Iterable<number>, live: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  const work = [...seeds].filter((n) => live.has(n));
  for (const n of work) out.add(n);
  while (work.length > 0) {
    const n = nfa.nodes[work.pop()!]!;
    for (const to of [...n.empty, ...n.looks.map((l) => l.to)]) {
      if (live.has(to) && !out.has(to)) {
        out.add(to);
        work.push(to);
      }
    }
  }
  return out;
}

/** Question 1: every text the pattern can match starts with `spiffe://`. */
function schemePinned(nfa: Nfa, live: ReadonlySet<number>): boolean {
  let current = closure(nfa, [nfa.start], live);
  for (const ch of SCHEME) {
    const code = ch.charCodeAt(0);
    if (current.has(nfa.accept)) return false; // a match shorter than the scheme
    const next: number[] = [];
    for (const n of current) {
      for (const { set, to } of nfa.nodes[n]!.chars) {
        if (!live.has(to) || set.isEmpty) continue;
        if (!set.has(code) || !set.without({ min: code, max: code }).isEmpty) return false;
        next.push(to);
      }
    }
    current = closure(nfa, next, live);
  }
  return true;
}

// --- question 2: the product with a SPIFFE ID recogniser ----------------------

/** Every character a SPIFFE ID can hold; index = symbol number, END after them. */
const ID_CHARS = ":/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
const END = ID_CHARS.length;
const ALL_NEXT = (1n << BigInt(END + 1)) - 1n;

/**
 * States of a recogniser for `spiffe://td(/segment)*` beyond 0..8 (that many
 * scheme characters read); -1 = dead.
 */
const Id = {
  TrustDomainStart: 9,
  TrustDomain: 10,
  SegmentStart: 11,
  Dot: 12,
  DotDot: 13,
  Segment: 14,
} as const;

function idStep(state: number, ch: string): number {
  if (state < 9) return ch === SCHEME[state] ? state + 1 : -1;
  const trustDomainChar = /[a-z0-9._-]/.test(ch);
  const pathChar = /[a-zA-Z0-9._-]/.test(ch);
  switch (state) {
    case Id.TrustDomainStart:
      return trustDomainChar ? Id.TrustDomain : -1;
    case Id.TrustDomain:
      return trustDomainChar ? Id.TrustDomain : ch === "/" ? Id.SegmentStart : -1;
    case Id.SegmentStart:
      return ch === "." ? Id.Dot : pathChar ? Id.Segment : -1;
    case Id.Dot:
      return ch === "." ? Id.DotDot : pathChar ? Id.Segment : -1;
    case Id.DotDot:
    case Id.Segment:
      return pathChar ? Id.Segment : ch === "/" && state === Id.Segment ? Id.SegmentStart : -1;
    default:
      return -1;
  }
}

const ID_STEPS: readonly (readonly number[])[] = Array.from(
  { length: Id.Segment + 1 },
  (_, state) => [...ID_CHARS].map((ch) => idStep(state, ch)),
);
const idAccepting = (state: number) => state === Id.TrustDomain || state === Id.Segment;

/** Which next symbols (ID characters, or END) satisfy a lookahead. */
function lookaheadMask(look: Look): bigint {
  let mask = look.negate ? 1n << BigInt(END) : 0n;
  for (let i = 0; i < END; i++) {
    if (look.set.has(ID_CHARS.charCodeAt(i)) !== look.negate) mask |= 1n << BigInt(i);
  }
  return mask;
}

/**
 * Question 2, given question 1: a match starts with `spiffe://`, which a
 * valid ID holds only at its start, so the search runs from position 0 over
 * ID characters, tracking the previous character (for lookbehinds) and what
 * the next one may be (for lookaheads). `undefined` when the search grows
 * past its bound.
 */
function matchesSomeSpiffeId(nfa: Nfa, live: ReadonlySet<number>): boolean | undefined {
  const masks = new Map<Look, bigint>();
  const maskOf = (look: Look) => {
    let mask = masks.get(look);
    if (mask === undefined) masks.set(look, mask = lookaheadMask(look));
    return mask;
  };
  // A state: NFA node, recogniser state, previous symbol (-1 at the start), allowed next symbols.
  const seen = new Set<string>();
  const work: Array<[number, number, number, bigint]> = [];
  const push = (n: number, q: number, prev: number, next: bigint) => {
    if (!live.has(n) || next === 0n) return;
    const key = `${n},${q},${prev},${next}`;
    if (seen.has(key)) return;
    seen.add(key);
    work.push([n, q, prev, next]);
  };
  push(nfa.start, 0, -1, ALL_NEXT);
  while (work.length > 0) {
    if (seen.size > MAX_PRODUCT_STATES) return undefined;
    const [n, q, prev, next] = work.pop()!;
    if (n === nfa.accept && completable(q, next)) return true;
    const node = nfa.nodes[n]!;
    for (const to of node.empty) push(to, q, prev, next);
    for (const look of node.looks) {
      if (look.ahead) {
        push(look.to, q, prev, next & maskOf(look));
      } else {
        const holds = prev === -1 ? look.negate : look.set.has(ID_CHARS.charCodeAt(prev)) !== look.negate;
        if (holds) push(look.to, q, prev, next);
      }
    }
    for (const { set, to } of node.chars) {
      for (let i = 0; i < END; i++) {
        if ((next & (1n << BigInt(i))) === 0n || !set.has(ID_CHARS.charCodeAt(i))) continue;
        const q2 = ID_STEPS[q]![i]!;
        if (q2 !== -1) push(to, q2, i, ALL_NEXT);
      }
    }
  }
  return false;
}

/** Whether an ID read up to recogniser state `q` can end validly with its next symbol in `next`. */
function completable(q: number, next: bigint): boolean {
  if (idAccepting(q) && (next & (1n << BigInt(END))) !== 0n) return true;
  // Every live recogniser state can still reach an accepting one.
  for (let i = 0; i < END; i++) {
    if ((next & (1n << BigInt(i))) !== 0n && ID_STEPS[q]![i] !== -1) return true;
  }
  return false;
}
