import assert from "node:assert/strict";
import fc from "fast-check";
import { ApiError } from "../api/errors.ts";
import { formatRecoveryFile, formatRecoveryShard, parseRecoveryFile, parseRecoveryShard } from "./recovery_file.ts";

Deno.test("formatRecoveryShard writes spike:<index>:<64 lower-case hex>", () => {
  const shard = Uint8Array.from({ length: 32 }, (_, i) => i * 8);
  assert.equal(
    formatRecoveryShard(2, shard),
    "spike:2:0008101820283038404850586068707880889098a0a8b0b8c0c8d0d8e0e8f0f8",
  );
  assert.equal(formatRecoveryShard(1, new Uint8Array(32)), `spike:1:${"0".repeat(64)}`);
});

Deno.test("parseRecoveryShard: round trip, blanks and a trailing newline ignored, hex in either case", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1000 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (index, shard) => {
      const text = formatRecoveryShard(index, shard);
      assert.deepEqual(parseRecoveryShard(text), { index, shard });
      assert.deepEqual(parseRecoveryShard(`  ${text.toUpperCase().replace("SPIKE", "spike")}\n`), { index, shard });
    }),
  );
});

Deno.test("parseRecoveryShard refuses other text without quoting it", () => {
  const hex = "ab".repeat(32);
  const bad = [
    "",
    `spike:1:${hex.slice(0, 63)}`,
    `spike:1:${hex}0`,
    `spike:1:${hex.slice(0, 62)}zz`,
    `SPIKE:1:${hex}`,
    `spike:0:${hex}`,
    `spike:1001:${hex}`,
    `spike:-1:${hex}`,
    `spike::${hex}`,
    `spike:1:${hex}:extra`,
    `spike:1 :${hex}`,
    `keeper:1:${hex}`,
  ];
  for (const text of bad) {
    assert.throws(() => parseRecoveryShard(text), (error: unknown) => {
      assert.ok(error instanceof ApiError, JSON.stringify(text));
      assert.ok(!error.message.includes(hex.slice(0, 16)), "the shard is not in the message");
      return true;
    });
  }
});

Deno.test("recovery files: the shard line first (SPIKE's format), then the key version comment; both read back", () => {
  const shard = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const text = formatRecoveryFile(3, shard, {
    keyVersion: 7,
    shares: 5,
    threshold: 3,
    writtenAt: new Date("2026-12-01T10:00:00.000Z"),
  });
  const [first, second, rest] = text.split("\n");
  assert.equal(first, formatRecoveryShard(3, shard), "an older reader taking the first line gets the shard");
  assert.equal(second, "# spike root key version 7; shard 3 of 5, 3 needed; written 2026-12-01T10:00:00.000Z");
  assert.equal(rest, "");
  assert.deepEqual(parseRecoveryFile(text), { index: 3, shard, keyVersion: 7 });
  // A file without the comment (SPIKE's, or from before key versions), or a pasted line.
  assert.deepEqual(parseRecoveryFile(`${first}\n`), { index: 3, shard });
  assert.deepEqual(parseRecoveryFile(`\n# a note\n${first}\n\n`), { index: 3, shard });
  for (const bad of ["", "# root key version 2\n", `${first}\n${first}\n`, "spike:1:zz"]) {
    assert.throws(() => parseRecoveryFile(bad), (e: unknown) => e instanceof ApiError && !e.message.includes(first!));
  }
});
