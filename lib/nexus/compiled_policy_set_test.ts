import assert from "node:assert/strict";
import fc from "fast-check";
import { type Permission, PERMISSIONS } from "../api/validate.ts";
import type { PolicyRecord } from "../store/types.ts";
import { ACL_PATH, CIPHER_PATH, isAllowed, SECRET_LIST_PATH } from "./authorizer.ts";
import { CompiledPolicySet } from "./compiled_policy_set.ts";
import { isAnchored } from "./pattern_shape.ts";

/** The V8 flag, held in a variable so linters don't judge the literal (as in linear_regex.ts). */
const LINEAR = "l";
const RESERVED = [ACL_PATH, SECRET_LIST_PATH, CIPHER_PATH];

/** The regex, or undefined when it does not compile. */
function tryCompile(source: string): RegExp | undefined {
  try {
    return new RegExp(source, LINEAR);
  } catch {
    return undefined;
  }
}

/**
 * The reference: every policy in turn, its patterns compiled on the spot as
 * plain regexes (no literal fast path, no index, no sharing).
 */
function naiveAllowed(
  spiffeId: string,
  path: string,
  wanted: readonly Permission[],
  policies: readonly PolicyRecord[],
): boolean {
  const reserved = RESERVED.includes(path);
  for (const policy of policies) {
    const granted = policy.permissions;
    if (!granted.includes("super") && !wanted.every((p) => granted.includes(p))) continue;
    if (reserved && !isAnchored(policy.spiffeIdPattern)) continue;
    const id = tryCompile(policy.spiffeIdPattern);
    const pathRegex = tryCompile(policy.pathPattern);
    if (!id || !pathRegex || !id.test(spiffeId)) continue;
    const pathMatch = reserved ? tryCompile(`^(?:${policy.pathPattern})$`) : pathRegex;
    if (!pathMatch?.test(path)) continue;
    return true;
  }
  return false;
}

function record(n: number, spiffeIdPattern: string, pathPattern: string, permissions: Permission[]): PolicyRecord {
  const at = new Date(0);
  return { name: `p${n}`, spiffeIdPattern, pathPattern, permissions, createdAt: at, updatedAt: at };
}

/** Pieces inputs are made of: plain characters, metacharacters, line terminators, a lone surrogate. */
const TEXT_PIECES = [
  "a",
  "b",
  "/",
  ":",
  "-",
  ".",
  "|",
  "$",
  "\\",
  "é",
  "\ud83d\ude00",
  "\ud83d",
  "\n",
  "\r",
  "\u2028",
  "1",
  "spiffe://x/",
  "spike/system/",
];
/** Pieces pattern tails are made of: constructs the index must read correctly or leave alone. */
const PATTERN_PIECES = [
  "a",
  "b",
  "/",
  ".",
  "*",
  "+",
  "?",
  "{1,2}",
  "{",
  "|",
  "(",
  ")",
  "(?:a|b)",
  "(a|.*)",
  "[ab]",
  "[^a]",
  "[|]",
  "$",
  "^",
  "\\.",
  "\\/",
  "\\|",
  "\\d",
  "\\w",
  "\\n",
  "\\",
  ".*",
  ".*$",
  "\n",
  "\u2028",
];

const text = fc.array(fc.constantFrom(...TEXT_PIECES), { maxLength: 6 }).map((parts) => parts.join(""));

/** `text` as a regex that matches it literally, each metacharacter escaped one of two ways. */
const literal = (t: string, useClass: boolean) =>
  t.replace(/[\\^$.|?*+()[\]{}/-]/g, (c) => (useClass && c !== "\\" && c !== "]" && c !== "^" ? `[${c}]` : `\\${c}`));

/**
 * A pattern: either random pieces, or a (prefix of a) likely input written
 * literally with a random tail, so that policies often match.
 */
function patternFor(inputs: readonly string[]): fc.Arbitrary<string> {
  const pieces = fc.array(fc.constantFrom(...PATTERN_PIECES), { maxLength: 5 }).map((p) => p.join(""));
  const derived = fc.tuple(
    fc.constantFrom(...inputs),
    fc.nat(),
    fc.boolean(),
    fc.constantFrom("^", "", "^^"),
    fc.constantFrom("", "$", ".*", ".*$", "|^b", "|.*$", "(a|b)*", "\\d?", "+", "[ab]*$", "$|^a$"),
  ).map(([input, cut, useClass, head, tail]) =>
    `${head}${literal(input.slice(0, cut % (input.length + 1)), useClass)}${tail}`
  );
  return fc.oneof(
    { weight: 3, arbitrary: derived },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("^", ""), pieces).map(([h, p]) => h + p) },
    { weight: 1, arbitrary: fc.constantFrom(".*", "", "^$", "^.*$", "(", "^a\\", "^(?<=a)b$", "^(a)\\1$") },
  );
}

const permissionsArb = fc.subarray([...PERMISSIONS], { minLength: 1 });

/** Policies, IDs and paths drawn so that many policies nearly match the requests. */
const scenario = fc.tuple(
  fc.array(text, { minLength: 1, maxLength: 4 }),
  fc.array(text, { minLength: 1, maxLength: 4 }),
)
  .chain(([ids, paths]) => {
    const allPaths = [...paths, ...RESERVED];
    const policy = fc.tuple(patternFor(ids), patternFor(allPaths), permissionsArb);
    return fc.record({
      ids: fc.constant(ids),
      paths: fc.constant(allPaths),
      policies: fc.array(policy, { maxLength: 12 }).map((list) =>
        list.map(([id, path, permissions], n) => record(n, id, path, permissions))
      ),
      wanted: fc.subarray(["read", "write", "list", "execute"] as Permission[], { minLength: 1, maxLength: 2 }),
    });
  });

Deno.test("compiled policy set: the indexed answer equals a plain scan of every policy, on every input", () => {
  let granted = 0;
  let checks = 0;
  fc.assert(
    fc.property(scenario, ({ ids, paths, policies, wanted }) => {
      // The generation before lacked the first policy and answered some requests (whole-path matchers
      // compiled); the set built from it takes its patterns over and must answer as a fresh one.
      const before = new CompiledPolicySet(policies.slice(1));
      for (const path of paths) isAllowed({ spiffeId: ids[0]!, superuser: false }, path, wanted, before);
      const fresh = new CompiledPolicySet(policies);
      const carried = new CompiledPolicySet(policies, before);
      for (const spiffeId of ids) {
        for (const path of paths) {
          const expected = naiveAllowed(spiffeId, path, wanted, policies);
          const caller = { spiffeId, superuser: false };
          const request = () =>
            `${JSON.stringify(spiffeId)} ${JSON.stringify(path)} ${wanted} ${
              JSON.stringify(policies.map((p) => [p.spiffeIdPattern, p.pathPattern, p.permissions]))
            }`;
          if (isAllowed(caller, path, wanted, fresh) !== expected) assert.fail(`fresh set: ${request()}`);
          if (isAllowed(caller, path, wanted, carried) !== expected) assert.fail(`taken over: ${request()}`);
          checks++;
          if (expected) granted++;
        }
      }
    }),
    { numRuns: 4000 },
  );
  // The generator must produce both answers often, or the comparison proves little.
  assert.ok(granted > checks * 0.1 && granted < checks * 0.9, `${granted} of ${checks} granted`);
});

Deno.test("compiled policy set: with 10,000 policies the indexed answer equals a plain scan", () => {
  const policies: PolicyRecord[] = [];
  for (let i = 0; i < 10_000; i++) {
    const team = String(i).padStart(5, "0");
    policies.push(
      i % 10 === 3
        // Every tenth policy cannot be indexed by ID; every twentieth not by path either.
        ? record(i, `team-${team}/(web|db)$`, i % 20 === 3 ? `(^|/)t${team}/` : `^t${team}/`, ["read"])
        : record(i, `^spiffe://spike\\.ist/team-${team}/.*$`, `^team-${team}/`, ["read", "write"]),
    );
  }
  policies.push(record(10_000, "^spiffe://spike\\.ist/ops$", "^spike/system/secret$", ["list"]));
  const set = new CompiledPolicySet(policies);
  assert.equal(set.size, policies.length);
  const requests: Array<[string, string, Permission]> = [];
  for (const i of [0, 1, 3, 13, 23, 4_999, 7_777, 9_993, 9_999]) {
    const team = String(i).padStart(5, "0");
    const other = String((i + 1) % 10_000).padStart(5, "0");
    requests.push(
      [`spiffe://spike.ist/team-${team}/svc`, `team-${team}/db`, "read"],
      [`spiffe://spike.ist/team-${team}/svc`, `team-${team}/db`, "write"],
      [`spiffe://spike.ist/team-${team}/svc`, `team-${other}/db`, "read"],
      [`spiffe://x/team-${team}/web`, `t${team}/db`, "read"],
      [`spiffe://x/team-${team}/web`, `x/t${team}/db`, "read"],
      [`spiffe://x/team-${team}/web`, `t${team}/db`, "write"],
    );
  }
  requests.push(
    ["spiffe://spike.ist/ops", SECRET_LIST_PATH, "list"],
    ["spiffe://spike.ist/ops", ACL_PATH, "list"],
    ["spiffe://spike.ist/ops2", SECRET_LIST_PATH, "list"],
  );
  let granted = 0;
  for (const [spiffeId, path, permission] of requests) {
    const expected = naiveAllowed(spiffeId, path, [permission], policies);
    assert.equal(isAllowed({ spiffeId, superuser: false }, path, [permission], set), expected, `${spiffeId} ${path}`);
    if (expected) granted++;
  }
  assert.ok(granted > 10 && granted < requests.length - 10, `${granted} of ${requests.length} granted`);
});

Deno.test("compiled policy set: a pattern that does not compile grants nothing, whatever the other says", () => {
  const set = new CompiledPolicySet([
    record(0, "^spiffe://a$", "(", ["super"]),
    record(1, "^(a)\\1$", ".*", ["super"]),
    record(2, "^spiffe://b$", "^ok/", ["read"]),
  ]);
  assert.equal(set.size, 1);
  assert.equal(isAllowed({ spiffeId: "spiffe://a", superuser: false }, "x", ["read"], set), false);
  assert.equal(isAllowed({ spiffeId: "aa", superuser: false }, "x", ["read"], set), false);
  assert.equal(isAllowed({ spiffeId: "spiffe://b", superuser: false }, "ok/x", ["read"], set), true);
  assert.equal(set.records.length, 3, "the records stay listed as stored");
  assert.ok(Object.isFrozen(set.records));
});

Deno.test("compiled policy set: pathScope grants exactly the paths some single permission of anyOf reaches", () => {
  let granted = 0;
  let checks = 0;
  fc.assert(
    fc.property(
      scenario,
      fc.subarray(["read", "write", "list", "execute"] as Permission[], { minLength: 1, maxLength: 2 }),
      ({ ids, paths, policies }, anyOf) => {
        const set = new CompiledPolicySet(policies);
        for (const spiffeId of ids) {
          const scope = set.pathScope(spiffeId, anyOf);
          for (const path of paths) {
            if (RESERVED.includes(path)) continue; // reserved paths are matched strictly, never listed
            const expected = anyOf.some((p) => naiveAllowed(spiffeId, path, [p], policies));
            const request = `${JSON.stringify(spiffeId)} ${JSON.stringify(path)} ${anyOf} ${
              JSON.stringify(policies.map((p) => [p.spiffeIdPattern, p.pathPattern, p.permissions]))
            }`;
            if (scope.test(path) !== expected) assert.fail(`pathScope.test: ${request}`);
            if (expected && scope.prefixes && !scope.prefixes.some((p) => path.startsWith(p))) {
              assert.fail(`a granted path outside the scope's prefixes ${JSON.stringify(scope.prefixes)}: ${request}`);
            }
            checks++;
            if (expected) granted++;
          }
        }
      },
    ),
    { numRuns: 3000 },
  );
  assert.ok(granted > checks * 0.05 && granted < checks * 0.95, `${granted} of ${checks} granted`);
});

Deno.test("compiled policy set: pathScope prefixes name the literal ranges; none when a pattern has no prefix", () => {
  const set = new CompiledPolicySet([
    record(0, "^spiffe://a$", "^apps/a/", ["read"]),
    record(1, "^spiffe://a$", "^apps/b/x$", ["list"]),
    record(2, "^spiffe://a$", "^other/", ["write"]),
    record(3, "^spiffe://b$", "db$", ["read"]),
  ]);
  const a = set.pathScope("spiffe://a", ["read", "list"]);
  assert.deepEqual([...a.prefixes!].sort(), ["apps/a/", "apps/b/x"]);
  assert.ok(a.test("apps/a/db") && a.test("apps/b/x") && !a.test("apps/b/y") && !a.test("other/z"));
  assert.equal(set.pathScope("spiffe://b", ["read"]).prefixes, undefined);
  assert.deepEqual(set.pathScope("spiffe://c", ["read"]).prefixes, []);
  assert.equal(set.pathScope("spiffe://c", ["read"]).test("apps/a/db"), false);
});
