/**
 * `-f env` lines read back exactly by a real bash with
 * `set -a; . ./file; set +a`, for values made of the characters shells
 * treat specially and any other Unicode.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { CliError } from "./errors.ts";
import { renderEnvLines, shellSingleQuote } from "./dotenv.ts";

/** Sources `lines` in bash and returns the values of `keys`, NUL-separated as bash prints them. */
async function sourceInBash(lines: string, keys: readonly string[]): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "spike-dotenv-" });
  try {
    await Deno.writeTextFile(`${dir}/secret.env`, lines);
    const script = `set -eu; set -a; . ./secret.env; set +a; for k in ${
      keys.join(" ")
    }; do printf '%s\\0' "\${!k}"; done`;
    const output = await new Deno.Command("bash", {
      args: ["--noprofile", "--norc", "-c", script],
      cwd: dir,
      env: { LC_ALL: "C.UTF-8" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const text = new TextDecoder().decode(output.stdout);
    return text.split("\0").slice(0, keys.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const tricky = fc.constantFrom(
  "'",
  '"',
  "\n",
  "\r",
  "$",
  "`",
  "\\",
  "!",
  " ",
  "\t",
  "#",
  ";",
  "&",
  "*",
  "~",
  "é",
  "🔑",
);
const anyChar = fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => c !== "\0");
const value = fc.array(fc.oneof(tricky, anyChar), { maxLength: 24 }).map((chars) => chars.join(""));
// Prefixed so that no generated name is one bash gives a meaning to (PATH, IFS, BASH_*, ...).
const key = fc.stringMatching(/^[A-Za-z0-9_]{0,8}$/).map((rest) => `K_${rest}`);

Deno.test("renderEnvLines: property: values round-trip through set -a; . file in bash", async () => {
  await fc.assert(
    fc.asyncProperty(fc.dictionary(key, value, { minKeys: 1, maxKeys: 5 }), async (data) => {
      const keys = Object.keys(data).sort();
      const read = await sourceInBash(renderEnvLines(data), keys);
      assert.deepEqual(read, keys.map((k) => data[k]));
    }),
    { numRuns: 60 },
  );
});

Deno.test("renderEnvLines: sorted KEY='value' lines; quotes closed and reopened around a quote", async () => {
  const data = { user: "admin", pass: "it's $HOME `id` \\n", cert: "-----BEGIN X-----\nline two\n" };
  assert.equal(
    renderEnvLines(data),
    "cert='-----BEGIN X-----\nline two\n'\npass='it'\\''s $HOME `id` \\n'\nuser='admin'\n",
  );
  assert.deepEqual(await sourceInBash(renderEnvLines(data), ["cert", "pass", "user"]), [
    data.cert,
    data.pass,
    data.user,
  ]);
  assert.equal(shellSingleQuote(""), "''");
});

Deno.test("renderEnvLines: keys that are not shell names, and NUL in a value, are refused with exit 1", () => {
  for (const bad of ["my-key", "1st", "a b", "", "é", "a.b"]) {
    assert.throws(() => renderEnvLines({ ok: "1", [bad]: "x" }), (error: unknown) => {
      assert.ok(error instanceof CliError);
      assert.equal(error.exitCode, 1);
      assert.match(error.message, /not a shell variable name/);
      return true;
    });
  }
  assert.throws(() => renderEnvLines({ k: "a\0b" }), /NUL/);
});
