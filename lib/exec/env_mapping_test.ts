import assert from "node:assert/strict";
import {
  EnvMappingError,
  MappingSpecError,
  mapSecretsToEnv,
  parseMapSpec,
  parsePathSpec,
  type ReadSecret,
} from "./env_mapping.ts";

const db: ReadSecret = { path: "app/db", values: { user: "u", pass: "p" } };
const cache: ReadSecret = { path: "app/cache", values: { user: "c", url: "redis://x" } };

Deno.test("parsePathSpec: path, or path=prefix", () => {
  assert.deepEqual(parsePathSpec("app/db"), { path: "app/db" });
  assert.deepEqual(parsePathSpec("app/db=DB_"), { path: "app/db", prefix: "DB_" });
  assert.deepEqual(parsePathSpec("app/db="), { path: "app/db", prefix: "" });
  assert.throws(() => parsePathSpec("=DB_"), MappingSpecError);
  assert.throws(() => parsePathSpec("app/db=1X"), /cannot start an environment variable name/);
  assert.throws(() => parsePathSpec("app/db=A-"), MappingSpecError);
});

Deno.test("parseMapSpec: KEY=NAME and PATH:KEY=NAME", () => {
  assert.deepEqual(parseMapSpec("db-pass=DB_PASSWORD"), { key: "db-pass", name: "DB_PASSWORD" });
  assert.deepEqual(parseMapSpec("app/db:db pass=P"), { path: "app/db", key: "db pass", name: "P" });
  assert.throws(() => parseMapSpec("novalue"), /KEY=NAME/);
  assert.throws(() => parseMapSpec("=X"), /KEY=NAME/);
  assert.throws(() => parseMapSpec(":k=X"), /KEY=NAME/);
  assert.throws(() => parseMapSpec("k=9X"), /'9X' is not a valid environment variable name/);
});

Deno.test("mapSecretsToEnv: keys become variables, prefix and uppercase applied", () => {
  assert.deepEqual(mapSecretsToEnv([db]), { user: "u", pass: "p" });
  assert.deepEqual(mapSecretsToEnv([db], { prefix: "DB_", uppercase: true }), { DB_USER: "u", DB_PASS: "p" });
  assert.deepEqual(
    mapSecretsToEnv([{ ...db, prefix: "DB_" }, { ...cache, prefix: "CACHE_" }], { uppercase: true }),
    { DB_USER: "u", DB_PASS: "p", CACHE_USER: "c", CACHE_URL: "redis://x" },
  );
  // A per-path prefix overrides the global one.
  assert.deepEqual(mapSecretsToEnv([{ ...db, prefix: "" }], { prefix: "X_" }), { user: "u", pass: "p" });
});

Deno.test("mapSecretsToEnv: a collision across paths is refused, naming both sides and no value", () => {
  const secretA = { path: "app/db", values: { user: "VALUE-ONE" } };
  const secretB = { path: "app/cache", values: { user: "VALUE-TWO" } };
  assert.throws(() => mapSecretsToEnv([secretA, secretB]), (e: unknown) => {
    assert.ok(e instanceof EnvMappingError);
    assert.match(e.message, /app\/db \(key 'user'\) and app\/cache \(key 'user'\) would both be the variable user/);
    assert.ok(!e.message.includes("VALUE-"));
    return true;
  });
  // The same global prefix does not tell them apart either.
  assert.throws(() => mapSecretsToEnv([db, cache], { prefix: "P_" }), /would both be the variable P_user/);
  // Upper-casing can make keys of one secret collide.
  assert.throws(
    () => mapSecretsToEnv([{ path: "a", values: { user: "1", USER: "2" } }], { uppercase: true }),
    /would both be the variable USER/,
  );
});

Deno.test("mapSecretsToEnv: names that are not shell identifiers are refused unless mapped", () => {
  const odd: ReadSecret = { path: "app/odd", values: { "db-pass": "secret-value", "1st": "x" } };
  assert.throws(() => mapSecretsToEnv([odd]), (e: unknown) => {
    assert.ok(e instanceof EnvMappingError);
    assert.match(e.message, /app\/odd \(key '1st'\).*not a valid environment variable name; name it with --map/);
    assert.ok(!e.message.includes("secret-value"));
    return true;
  });
  assert.deepEqual(
    mapSecretsToEnv([odd], {
      prefix: "Z_",
      maps: [{ key: "db-pass", name: "DB_PASSWORD" }, { path: "app/odd", key: "1st", name: "FIRST" }],
    }),
    { DB_PASSWORD: "secret-value", FIRST: "x" },
  );
});

Deno.test("mapSecretsToEnv: a path-specific map wins; an unused map is an error", () => {
  assert.deepEqual(
    mapSecretsToEnv([db, { ...cache, prefix: "C_" }], {
      maps: [{ key: "user", name: "ANY_USER" }, { path: "app/cache", key: "user", name: "CACHE_USER" }],
    }),
    { ANY_USER: "u", pass: "p", CACHE_USER: "c", C_url: "redis://x" },
  );
  assert.throws(() => mapSecretsToEnv([db], { maps: [{ key: "nope", name: "N" }] }), /no secret has a key 'nope'/);
  assert.throws(
    () => mapSecretsToEnv([db], { maps: [{ path: "app/db", key: "nope", name: "N" }] }),
    /secret app\/db has no key 'nope'/,
  );
  assert.throws(
    () => mapSecretsToEnv([db], { maps: [{ path: "app/x", key: "user", name: "N" }] }),
    /app\/x is not one of the --path secrets/,
  );
  // A mapped name may collide too.
  assert.throws(
    () => mapSecretsToEnv([db], { maps: [{ key: "user", name: "pass" }] }),
    /would both be the variable pass/,
  );
});
