import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { DotenvError, isEnvName, quoteShellValue, renderDotenv } from "./dotenv.ts";

/**
 * Sources `text` with real bash (`set -a; . file; set +a`) and reads back
 * the named variables from the environment of a child (so they were really
 * exported), NUL-separated.
 */
async function sourceWithBash(text: string, names: readonly string[]): Promise<Record<string, string>> {
  const dir = await Deno.makeTempDir({ prefix: "dotenv_" });
  try {
    const file = join(dir, "values.env");
    await Deno.writeTextFile(file, text);
    const script = `set -a; . "$1"; set +a; shift; for n in "$@"; do printenv "$n" >/dev/null || exit 9; ` +
      `printenv "$n" | head -c -1; printf '\\0'; done`;
    // printenv adds one newline per value; `head -c -1` takes it off again.
    const out = await new Deno.Command("bash", {
      args: ["-c", script, "bash", file, ...names],
      env: { LC_ALL: "C.UTF-8" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const parts = new TextDecoder().decode(out.stdout).split("\0");
    parts.pop();
    return Object.fromEntries(names.map((n, i) => [n, parts[i]!]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("env names: shell identifiers only", () => {
  for (const ok of ["A", "_", "db_user", "X1", "_9"]) assert.ok(isEnvName(ok), ok);
  for (const bad of ["", "1A", "a-b", "a b", "a.b", "é", "A=B", "a\n"]) assert.ok(!isEnvName(bad), JSON.stringify(bad));
});

Deno.test("renderDotenv: sorted, single-quoted, quotes escaped", () => {
  assert.equal(renderDotenv({ B: "it's", A: "$HOME `x` \\n" }), `A='$HOME \`x\` \\n'\nB='it'\\''s'\n`);
  assert.equal(renderDotenv({}), "");
});

Deno.test("renderDotenv: refuses a bad name or a NUL, naming the key but not the value", () => {
  assert.throws(() => renderDotenv({ "db-pass": "hunter2" }), (e: unknown) => {
    assert.ok(e instanceof DotenvError);
    assert.equal(e.key, "db-pass");
    assert.ok(!e.message.includes("hunter2"));
    return true;
  });
  assert.throws(() => quoteShellValue("a\0b", "K"), /key 'K' has a value with a NUL/);
});

Deno.test("renderDotenv: tricky values round-trip through bash", async () => {
  const values = {
    QUOTES: `'"''"'`,
    NEWLINES: "line one\nline two\n\n",
    DOLLAR: "$HOME ${PATH} $(id) $((1+1))",
    BACKTICKS: "`id` ``",
    BACKSLASHES: "\\ \\\\ \\n \\' end\\",
    UNICODE: "héllo ✓ 日本 🙂 \u00a0",
    CONTROL: "\t\r\u0001\u007f",
    EMPTY: "",
    SPACES: "  lead and trail  ",
    HASH: "# not a comment",
    EQUALS: "a=b=c",
  };
  assert.deepEqual(await sourceWithBash(renderDotenv(values), Object.keys(values)), values);
});

Deno.test("renderDotenv: random values round-trip through bash (property)", async () => {
  const specials = fc.constantFrom("'", '"', "$", "`", "\\", "\n", "\r", "\t", " ", "#", "=", "!", "{", "}", "(", ")");
  const valueChar = fc.oneof(specials, fc.string({ unit: "binary", minLength: 1, maxLength: 1 }));
  const value = fc.array(valueChar, { maxLength: 40 }).map((parts) => parts.join(""))
    .filter((v) => v.isWellFormed() && !v.includes("\0"));
  // A fixed prefix keeps clear of bash's own variables (UID, PWD, SHELLOPTS…).
  const name = fc.stringMatching(/^[A-Za-z0-9_]{1,12}$/).map((s) => `SPIKE_T_${s}`);
  await fc.assert(
    fc.asyncProperty(fc.dictionary(name, value, { minKeys: 1, maxKeys: 6 }), async (generated) => {
      const values = { ...generated };
      assert.deepEqual(await sourceWithBash(renderDotenv(values), Object.keys(values)), values);
    }),
    { numRuns: 60 },
  );
});
