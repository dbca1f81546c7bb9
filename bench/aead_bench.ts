/**
 * AES-256-GCM micro-benchmark: `@noble/ciphers` (synchronous, pure JS) against
 * WebCrypto (`crypto.subtle`, asynchronous, native).
 *
 * Run: `deno run -A bench/aead_bench.ts [--rounds N]`
 *
 * Every figure is the median of several rounds; the rounds of both
 * implementations are interleaved so that CPU frequency drift or a busy
 * neighbour hits both alike, and the ratios come from the same run. Each round
 * is bounded both in operations and in wall time, so the script always ends.
 *
 * Measured per payload size (64 B, 1 KiB, 4 KiB, 64 KiB) and concurrency
 * (1 operation in flight, as one sequential caller sees it, and 16 in flight,
 * as a server under load sees it; WebCrypto runs off the main thread, the
 * synchronous noble code cannot overlap):
 * - noble: `gcm(key, nonce, aad).encrypt()` / `.decrypt()`
 * - webcrypto: `subtle.encrypt()` / `subtle.decrypt()` with a key imported once
 * - webcrypto+import: the same, importing the raw key on every call (what a
 *   caller pays when it does not cache `CryptoKey` objects)
 * - node:crypto: `createCipheriv` / `createDecipheriv` (synchronous, native)
 *   with a `KeyObject` made once from the `CryptoKey`
 * - aead.ts: `encryptGcm` / `decryptGcm` of `lib/crypto/aead.ts` with the
 *   `CryptoKey`, i.e. what Nexus runs
 *
 * @module
 */

import { gcm } from "@noble/ciphers/aes.js";
import { createCipheriv, createDecipheriv, KeyObject } from "node:crypto";
import { decryptGcm, encryptGcm } from "../lib/crypto/aead.ts";
import { formatNumber as fmt, median } from "./support.ts";

/** One implementation under test: returns ciphertext‖tag / plaintext. */
interface Impl {
  readonly name: string;
  encrypt(
    nonce: Uint8Array,
    data: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array> | Uint8Array;
  decrypt(
    nonce: Uint8Array,
    data: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array> | Uint8Array;
}

/** Payload size with the number of operations one round performs. */
interface Case {
  readonly label: string;
  readonly size: number;
  readonly ops: number;
}

const CASES: readonly Case[] = [
  { label: "64 B", size: 64, ops: 4000 },
  { label: "1 KiB", size: 1024, ops: 2000 },
  { label: "4 KiB", size: 4096, ops: 1000 },
  { label: "64 KiB", size: 65536, ops: 100 },
];

/** A round stops early after this long, whatever its operation count. */
const ROUND_TIME_CAP_MS = 2000;

function parseRounds(args: readonly string[]): number {
  const at = args.indexOf("--rounds");
  if (at === -1) return 7;
  const n = Number(args[at + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 50) {
    throw new Error("--rounds must be an integer in 1..50");
  }
  return n;
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  // getRandomValues refuses more than 65536 bytes per call.
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}

async function makeImpls(key: Uint8Array): Promise<Impl[]> {
  const imported = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    "AES-GCM",
    false,
    ["encrypt", "decrypt"],
  );
  const params = (nonce: Uint8Array, aad: Uint8Array): AesGcmParams => ({
    name: "AES-GCM",
    iv: nonce as Uint8Array<ArrayBuffer>,
    additionalData: aad as Uint8Array<ArrayBuffer>,
    tagLength: 128,
  });
  const importEach = (usage: KeyUsage) =>
    crypto.subtle.importKey(
      "raw",
      key as Uint8Array<ArrayBuffer>,
      "AES-GCM",
      false,
      [usage],
    );
  const handle = KeyObject.from(imported);
  return [
    {
      name: "noble",
      encrypt: (nonce, data, aad) => gcm(key, nonce, aad).encrypt(data),
      decrypt: (nonce, data, aad) => gcm(key, nonce, aad).decrypt(data),
    },
    {
      name: "webcrypto",
      encrypt: async (nonce, data, aad) =>
        new Uint8Array(
          await crypto.subtle.encrypt(
            params(nonce, aad),
            imported,
            data as Uint8Array<ArrayBuffer>,
          ),
        ),
      decrypt: async (nonce, data, aad) =>
        new Uint8Array(
          await crypto.subtle.decrypt(
            params(nonce, aad),
            imported,
            data as Uint8Array<ArrayBuffer>,
          ),
        ),
    },
    {
      name: "node:crypto",
      encrypt(nonce, data, aad) {
        const cipher = createCipheriv("aes-256-gcm", handle, nonce, { authTagLength: 16 });
        cipher.setAAD(aad);
        const head = cipher.update(data);
        const tail = cipher.final();
        const out = new Uint8Array(head.length + tail.length + 16);
        out.set(head);
        out.set(tail, head.length);
        out.set(cipher.getAuthTag(), head.length + tail.length);
        return out;
      },
      decrypt(nonce, data, aad) {
        const decipher = createDecipheriv("aes-256-gcm", handle, nonce, { authTagLength: 16 });
        decipher.setAAD(aad);
        decipher.setAuthTag(data.subarray(data.length - 16));
        const head = decipher.update(data.subarray(0, data.length - 16));
        decipher.final();
        return head;
      },
    },
    {
      name: "aead.ts",
      encrypt: (nonce, data, aad) => encryptGcm(imported, nonce, data, aad),
      decrypt: (nonce, data, aad) => decryptGcm(imported, nonce, data, aad),
    },
    {
      name: "webcrypto+import",
      encrypt: async (nonce, data, aad) =>
        new Uint8Array(
          await crypto.subtle.encrypt(
            params(nonce, aad),
            await importEach("encrypt"),
            data as Uint8Array<ArrayBuffer>,
          ),
        ),
      decrypt: async (nonce, data, aad) =>
        new Uint8Array(
          await crypto.subtle.decrypt(
            params(nonce, aad),
            await importEach("decrypt"),
            data as Uint8Array<ArrayBuffer>,
          ),
        ),
    },
  ];
}

/** Operations kept in flight at once. */
const CONCURRENCY = [1, 16] as const;

/**
 * Runs one bounded round with `inFlight` operations awaited together;
 * returns operations per second.
 */
async function round(
  op: (i: number) => Promise<Uint8Array> | Uint8Array,
  ops: number,
  inFlight: number,
): Promise<number> {
  const start = performance.now();
  let done = 0;
  let sink = 0;
  while (done < ops) {
    const batch = [];
    for (let j = 0; j < inFlight; j++) batch.push(op(done + j));
    for (const out of await Promise.all(batch)) {
      sink ^= out[0] ?? 0; // keeps the result observable
    }
    done += inFlight;
    if (performance.now() - start > ROUND_TIME_CAP_MS) break;
  }
  const seconds = (performance.now() - start) / 1000;
  if (sink === 256) console.error("unreachable");
  return done / seconds;
}

async function main(): Promise<void> {
  const rounds = parseRounds(Deno.args);
  const key = randomBytes(32);
  const aad = new TextEncoder().encode("secrets/app/db|7");
  const impls = await makeImpls(key);

  console.log(
    `AES-256-GCM, ${rounds} rounds (median), deno ${Deno.version.deno}, ` +
      `v8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}`,
  );
  console.log(
    "| payload | op | in flight | impl | ops/s | MiB/s | vs noble |\n" +
      "|---|---|---:|---|---:|---:|---:|",
  );

  for (const c of CASES) {
    const nonces = Array.from({ length: 16 }, () => randomBytes(12));
    const plaintext = randomBytes(c.size);
    for (
      const [kind, inFlight] of (["encrypt", "decrypt"] as const).flatMap((
        k,
      ) => CONCURRENCY.map((n) => [k, n] as const))
    ) {
      // Each implementation decrypts its own ciphertexts, and all must agree.
      const sealed = await Promise.all(
        nonces.map((n) => impls[0]!.encrypt(n, plaintext, aad)),
      );
      for (const impl of impls) {
        const again = await impl.encrypt(nonces[0]!, plaintext, aad);
        if (again.join() !== sealed[0]!.join()) {
          throw new Error(`${impl.name} disagrees with noble`);
        }
      }
      const samples = new Map<string, number[]>(impls.map((i) => [i.name, []]));
      // One untimed warm-up round per implementation, then interleaved rounds.
      for (let r = 0; r <= rounds; r++) {
        for (const impl of impls) {
          const opsPerSec = await round(
            kind === "encrypt"
              ? (i) => impl.encrypt(nonces[i % 16]!, plaintext, aad)
              : (i) => impl.decrypt(nonces[i % 16]!, sealed[i % 16]!, aad),
            r === 0 ? Math.min(c.ops, 192) : c.ops,
            inFlight,
          );
          if (r > 0) samples.get(impl.name)!.push(opsPerSec);
        }
      }
      const base = median(samples.get("noble")!);
      for (const impl of impls) {
        const m = median(samples.get(impl.name)!);
        console.log(
          `| ${c.label} | ${kind} | ${inFlight} | ${impl.name} | ${fmt(m)} | ${
            fmt((m * c.size) / (1024 * 1024), 1)
          } | ${fmt(m / base, 2)}x |`,
        );
      }
    }
  }
}

if (import.meta.main) {
  await main();
}
