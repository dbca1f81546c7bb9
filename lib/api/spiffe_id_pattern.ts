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
/** Bounds that keep one check to tens of milliseconds whatever the input (typical patterns: under 1 ms). */
const MAX_NFA_NODES = 5_000;
const MAX_PRODUCT_STATES = 25_000;

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

/**
 * ID characters grouped into classes that nothing in the search tells
 * apart (the recogniser, every character set and assertion of the pattern),
 * so the search steps once per class instead of once per character.
 */
interface Classes {
  /** A representative ID character index per class. */
  readonly reps: readonly number[];
  /** Per distinct character set: which classes it holds. */
  readonly members: Map<CharSet, readonly boolean[]>;
  /** Lookbehind sets, in the order of `behindBits`. */
  readonly behind: readonly CharSet[];
  /** Per class: bit i set when the class is in `behind[i]`. */
  readonly behindBits: readonly number[];
}

function classesOf(nfa: Nfa): Classes | undefined {
  const sets = new Set<CharSet>();
  const behindSets = new Set<CharSet>();
  for (const node of nfa.nodes) {
    for (const c of node.chars) sets.add(c.set);
    for (const l of node.looks) (l.ahead ? sets : behindSets).add(l.set);
  }
  const behind = [...behindSets];
  if (behind.length > 30) return undefined;
  const all = [...sets, ...behind];
  const groups = new Map<string, number[]>();
  for (let i = 0; i < END; i++) {
    const code = ID_CHARS.charCodeAt(i);
    const signature = ID_STEPS.map((row) => row[i]).join(",") + "|" +
      all.map((set) => set.has(code) ? "1" : "0").join("");
    const group = groups.get(signature);
    if (group) group.push(i);
    else groups.set(signature, [i]);
  }
  const reps = [...groups.values()].map((g) => g[0]!);
  const members = new Map<CharSet, readonly boolean[]>();
  for (const set of all) members.set(set, reps.map((r) => set.has(ID_CHARS.charCodeAt(r))));
  const behindBits = reps.map((r) =>
    behind.reduce((bits, set, i) => set.has(ID_CHARS.charCodeAt(r)) ? bits | (1 << i) : bits, 0)
  );
  return { reps, members, behind, behindBits };
}

/**
 * Question 2, given question 1: a match starts with `spiffe://`, which a
 * valid ID holds only at its start, so the search runs from position 0 over
 * ID characters, tracking what lookbehinds can tell of the previous
 * character and what the next one may be (for lookaheads). `undefined` when
 * the search grows past its bound.
 */
function matchesSomeSpiffeId(nfa: Nfa, live: ReadonlySet<number>): boolean | undefined {
  const classes = classesOf(nfa);
  if (!classes) return undefined;
  const { reps, members, behind, behindBits } = classes;
  const endBit = 1n << BigInt(reps.length);
  const anyNext = (endBit << 1n) - 1n;
  const lookMasks = new Map<Look, bigint>();
  const lookMask = (look: Look): bigint => {
    let mask = lookMasks.get(look);
    if (mask === undefined) {
      const inSet = members.get(look.set)!;
      mask = look.negate ? endBit : 0n;
      reps.forEach((_, c) => {
        if (inSet[c] !== look.negate) mask! |= 1n << BigInt(c);
      });
      lookMasks.set(look, mask);
    }
    return mask;
  };
  // Lookahead masks are few: number them so a state is one number.
  const maskIds = new Map<bigint, number>();
  const masks: bigint[] = [];
  const maskId = (mask: bigint): number => {
    let id = maskIds.get(mask);
    if (id === undefined) {
      id = masks.length;
      masks.push(mask);
      maskIds.set(mask, id);
    }
    return id;
  };
  const anyNextId = maskId(anyNext);
  const ID_STATES = Id.Segment + 1;
  const PREVS = (1 << behind.length) + 1; // a membership pattern, or "at the start"
  const MASK_SLOTS = 1024;
  const seen = new Set<number>();
  // A state: NFA node, recogniser state, previous character (-1 at the start, else its lookbehind bits), next mask.
  const work: number[][] = [];
  const push = (n: number, q: number, prev: number, next: number): boolean => {
    if (!live.has(n) || masks[next] === 0n) return true;
    if (next >= MASK_SLOTS) return false;
    const key = ((n * ID_STATES + q) * PREVS + (prev + 1)) * MASK_SLOTS + next;
    if (seen.has(key)) return true;
    if (seen.size >= MAX_PRODUCT_STATES) return false;
    seen.add(key);
    work.push([n, q, prev, next]);
    return true;
  };
  if (!push(nfa.start, 0, -1, anyNextId)) return undefined;
  while (work.length > 0) {
    const [n, q, prev, next] = work.pop()! as [number, number, number, number];
    const nextMask = masks[next]!;
    if (n === nfa.accept && completable(q, nextMask, reps, endBit)) return true;
    const node = nfa.nodes[n]!;
    let ok = true;
    for (const to of node.empty) ok &&= push(to, q, prev, next);
    for (const look of node.looks) {
      if (look.ahead) {
        ok &&= push(look.to, q, prev, maskId(nextMask & lookMask(look)));
      } else {
        const inSet = prev !== -1 && (prev & (1 << behind.indexOf(look.set))) !== 0;
        if (inSet !== look.negate) ok &&= push(look.to, q, prev, next);
      }
    }
    for (const { set, to } of node.chars) {
      const inSet = members.get(set)!;
      for (let c = 0; c < reps.length; c++) {
        if (!inSet[c] || (nextMask & (1n << BigInt(c))) === 0n) continue;
        const q2 = ID_STEPS[q]![reps[c]!]!;
        if (q2 !== -1) ok &&= push(to, q2, behindBits[c]!, anyNextId);
      }
    }
    if (!ok) return undefined;
  }
  return false;
}

/** Whether an ID read up to recogniser state `q` can end validly with its next class in `next`. */
function completable(q: number, next: bigint, reps: readonly number[], endBit: bigint): boolean {
  if (idAccepting(q) && (next & endBit) !== 0n) return true;
  // Every live recogniser state can still reach an accepting one.
  for (let c = 0; c < reps.length; c++) {
    if ((next & (1n << BigInt(c))) !== 0n && ID_STEPS[q]![reps[c]!] !== -1) return true;
  }
  return false;
}
