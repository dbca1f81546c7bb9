import assert from "node:assert/strict";
import { type KeyGenerator, startEntropyWarmup, wantsEntropyWarmup } from "./entropy_warmup.ts";

Deno.test("commands that connect warm up; help, version, completions and offline audit do not", () => {
  for (
    const args of [
      ["nexus"],
      ["keeper"],
      ["bootstrap"],
      ["secret", "get", "app/db"],
      ["policy", "list"],
      ["operator", "recover"],
      ["cipher", "encrypt"],
      ["status"],
      ["exec", "--path", "app/db", "--", "env"],
      ["agent", "--config", "agent.yaml"],
      ["dev"],
    ]
  ) assert.equal(wantsEntropyWarmup(args), true, args.join(" "));
  for (
    const args of [
      [],
      ["--help"],
      ["-h"],
      ["--version"],
      ["version"],
      ["completions", "bash"],
      ["audit", "verify", "audit.log"],
      ["secret", "get", "--help"],
      ["nexus", "-h"],
    ]
  ) assert.equal(wantsEntropyWarmup(args), false, args.join(" "));
});

/** A key generator that records its calls and answers with `answer`. */
function recorder(answer: () => Promise<CryptoKeyPair>) {
  const calls: unknown[][] = [];
  const subtle = {
    generateKey: (...args: unknown[]) => {
      calls.push(args);
      return answer();
    },
  } as unknown as KeyGenerator;
  return { calls, subtle };
}

Deno.test("the warm-up asks for one non-extractable P-256 key and does not wait for it", async () => {
  let release!: () => void;
  const { calls, subtle } = recorder(() =>
    new Promise((resolve) => {
      release = () => resolve({} as CryptoKeyPair);
    })
  );
  const warmup = startEntropyWarmup(["secret", "get", "app/db"], subtle);
  assert.ok(warmup, "started");
  assert.deepEqual(calls, [[{ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]]]);
  release();
  assert.equal(await warmup, undefined);
});

Deno.test("the warm-up is skipped for offline commands and swallows failures", async () => {
  const skipped = recorder(() => Promise.resolve({} as CryptoKeyPair));
  assert.equal(startEntropyWarmup(["version"], skipped.subtle), undefined);
  assert.equal(skipped.calls.length, 0);

  const rejecting = recorder(() => Promise.reject(new Error("no entropy")));
  assert.equal(await startEntropyWarmup(["nexus"], rejecting.subtle), undefined);

  const throwing = {
    generateKey: () => {
      throw new Error("unsupported");
    },
  } as unknown as KeyGenerator;
  assert.equal(startEntropyWarmup(["nexus"], throwing), undefined);
});

Deno.test("the real warm-up generates a key and settles", async () => {
  // Against Deno's WebCrypto: the call the entry point makes must be one the runtime accepts.
  const warmup = startEntropyWarmup(["keeper"]);
  assert.ok(warmup);
  assert.equal(await warmup, undefined);
});
