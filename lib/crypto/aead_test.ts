import assert from "node:assert/strict";
import fc from "fast-check";
import { gcm } from "@noble/ciphers/aes.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import {
  AEAD_IMPLEMENTATIONS,
  decryptGcm,
  encryptGcm,
  importAeadKey,
  NONCE_LENGTH,
  open,
  seal,
  SEALED_OVERHEAD,
  SEALED_VERSION,
  SYNC_LIMIT,
} from "./aead.ts";
import { CryptoError } from "./errors.ts";
import { type RandomBytes, systemRandom } from "./random.ts";

// AES-256 test cases 13-16 of "The Galois/Counter Mode of Operation (GCM)"
// (McGrew, Viega), the vectors NIST's GCM validation uses.
const K15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const P15 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const C15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
  "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
const KAT = [
  {
    name: "test case 13 (empty plaintext, no AAD)",
    key: "00".repeat(32),
    nonce: "00".repeat(12),
    aad: "",
    plaintext: "",
    ciphertext: "",
    tag: "530f8afbc74536b9a963b4f1c4cb738b",
  },
  {
    name: "test case 14 (one zero block)",
    key: "00".repeat(32),
    nonce: "00".repeat(12),
    aad: "",
    plaintext: "00".repeat(16),
    ciphertext: "cea7403d4d606b6e074ec5d3baf39d18",
    tag: "d0d1c8a799996bf0265b98b5d48ab919",
  },
  {
    name: "test case 15 (four blocks)",
    key: K15,
    nonce: "cafebabefacedbaddecaf888",
    aad: "",
    plaintext: P15,
    ciphertext: C15,
    tag: "b094dac5d93471bdec1a502270e3cc6c",
  },
  {
    name: "test case 16 (partial block, with AAD)",
    key: K15,
    nonce: "cafebabefacedbaddecaf888",
    aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    plaintext: P15.slice(0, 120),
    ciphertext: C15.slice(0, 120),
    tag: "76fc6ece0f4e1768cddf8853bb2d551b",
  },
];

for (const tc of KAT) {
  Deno.test(`encryptGcm/decryptGcm: GCM spec ${tc.name}`, async () => {
    const key = hexToBytes(tc.key);
    const nonce = hexToBytes(tc.nonce);
    const aad = hexToBytes(tc.aad);
    const out = await encryptGcm(key, nonce, hexToBytes(tc.plaintext), aad);
    assert.equal(bytesToHex(out), tc.ciphertext + tc.tag);
    const back = await decryptGcm(key, nonce, out, aad);
    assert.equal(bytesToHex(back), tc.plaintext);
    // The same through a pre-imported key.
    const imported = await importAeadKey(key);
    assert.deepEqual(
      await encryptGcm(imported, nonce, hexToBytes(tc.plaintext), aad),
      out,
    );
  });
}

/** A random source that replays fixed bytes, to pin the nonce. */
function fixedRandom(bytes: Uint8Array): RandomBytes {
  return (length) => bytes.slice(0, length);
}

const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const dataArb = fc.uint8Array({ maxLength: 300 });

Deno.test("encryptGcm agrees with @noble/ciphers", async () => {
  await fc.assert(
    fc.asyncProperty(
      keyArb,
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      dataArb,
      fc.uint8Array({ maxLength: 64 }),
      async (key, nonce, plaintext, aad) => {
        assert.deepEqual(
          await encryptGcm(key, nonce, plaintext, aad),
          gcm(key, nonce, aad).encrypt(plaintext),
        );
      },
    ),
    { numRuns: 50 },
  );
});

/** Sizes on both sides of the limit between the two implementations. */
const spanningArb = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.integer({ min: SYNC_LIMIT - 40, max: SYNC_LIMIT + 40 }).chain((n) =>
    fc.uint8Array({ minLength: n, maxLength: n })
  ),
  fc.uint8Array({ minLength: SYNC_LIMIT, maxLength: 3 * SYNC_LIMIT }),
);

Deno.test("the node:crypto and WebCrypto implementations agree, open each other's output and refuse the same tampering", async () => {
  const { sync, webCrypto } = AEAD_IMPLEMENTATIONS;
  await fc.assert(
    fc.asyncProperty(
      keyArb,
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      spanningArb,
      fc.uint8Array({ maxLength: 64 }),
      fc.nat(),
      async (raw, nonce, plaintext, aad, flip) => {
        const imported = await importAeadKey(raw);
        for (const key of [raw, imported]) {
          const fromSync = sync.encrypt(key, nonce, plaintext, aad);
          const fromWeb = await webCrypto.encrypt(key, nonce, plaintext, aad);
          assert.deepEqual(fromSync, fromWeb);
          assert.deepEqual(sync.decrypt(key, nonce, fromWeb, aad), plaintext);
          assert.deepEqual(await webCrypto.decrypt(key, nonce, fromSync, aad), plaintext);
          const tampered = fromSync.slice();
          tampered[flip % tampered.length]! ^= 1 << (flip % 8);
          assert.equal(sync.decrypt(key, nonce, tampered, aad), undefined);
          assert.equal(await webCrypto.decrypt(key, nonce, tampered, aad), undefined);
        }
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("the public functions give the same bytes on both sides of SYNC_LIMIT", async () => {
  await fc.assert(
    fc.asyncProperty(
      keyArb,
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      spanningArb,
      async (raw, nonce, plaintext) => {
        const key = await importAeadKey(raw);
        const aad = new TextEncoder().encode("spike/v1/secret\u0000a/b\u00001");
        const ciphertext = await encryptGcm(key, nonce, plaintext, aad);
        assert.deepEqual(ciphertext, gcm(raw, nonce, aad).encrypt(plaintext));
        assert.deepEqual(await decryptGcm(key, nonce, ciphertext, aad), plaintext);
        const sealed = await seal(key, plaintext, aad, fixedRandom(nonce));
        assert.deepEqual(sealed.subarray(1 + NONCE_LENGTH), ciphertext);
        assert.deepEqual(await open(raw, sealed, aad), plaintext);
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("seal writes 0x01 ‖ nonce ‖ ciphertext ‖ tag", async () => {
  const key = hexToBytes(K15);
  const nonce = hexToBytes("cafebabefacedbaddecaf888");
  const aad = new TextEncoder().encode("app/db|3");
  const plaintext = new TextEncoder().encode('{"password":"hunter2"}');
  const sealed = await seal(key, plaintext, aad, fixedRandom(nonce));
  assert.equal(sealed.length, plaintext.length + SEALED_OVERHEAD);
  assert.equal(sealed[0], SEALED_VERSION);
  assert.deepEqual(sealed.subarray(1, 13), nonce);
  assert.deepEqual(
    sealed.subarray(13),
    await encryptGcm(key, nonce, plaintext, aad),
  );
  assert.deepEqual(await open(key, sealed, aad), plaintext);
});

Deno.test("seal then open round-trips with raw and imported keys", async () => {
  await fc.assert(
    fc.asyncProperty(keyArb, dataArb, dataArb, async (key, plaintext, aad) => {
      const sealed = await seal(key, plaintext, aad, systemRandom);
      assert.deepEqual(await open(key, sealed, aad), plaintext);
      const imported = await importAeadKey(key);
      assert.deepEqual(await open(imported, sealed, aad), plaintext);
      const again = await seal(imported, plaintext, aad, systemRandom);
      assert.deepEqual(await open(key, again, aad), plaintext);
    }),
    { numRuns: 40 },
  );
});

Deno.test("seal uses a fresh nonce each time", async () => {
  const key = new Uint8Array(32).fill(1);
  const plaintext = new Uint8Array(16);
  const a = await seal(key, plaintext, new Uint8Array(0), systemRandom);
  const b = await seal(key, plaintext, new Uint8Array(0), systemRandom);
  assert.notDeepEqual(a.subarray(1, 13), b.subarray(1, 13));
  assert.notDeepEqual(a, b);
});

/** Asserts `promise` rejects with the generic CryptoError. */
async function assertOpenFails(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CryptoError);
    assert.equal(err.message, "decryption failed");
    return true;
  });
}

Deno.test("open rejects any flipped bit", async () => {
  const key = new Uint8Array(32).fill(9);
  const aad = new TextEncoder().encode("path|1");
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 100 }),
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      async (plaintext, at, bit) => {
        const sealed = await seal(key, plaintext, aad, systemRandom);
        const tampered = new Uint8Array(sealed);
        const i = at % tampered.length;
        tampered[i] = tampered[i]! ^ (1 << bit);
        await assertOpenFails(open(key, tampered, aad));
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("open rejects every truncation", async () => {
  const key = new Uint8Array(32).fill(3);
  const aad = new Uint8Array([1, 2, 3]);
  const sealed = await seal(key, new Uint8Array(20).fill(5), aad, systemRandom);
  for (let len = 0; len < sealed.length; len++) {
    await assertOpenFails(open(key, sealed.subarray(0, len), aad));
  }
});

Deno.test("open rejects wrong AAD, wrong key, appended bytes and bad versions", async () => {
  const key = new Uint8Array(32).fill(3);
  const aad = new TextEncoder().encode("app/db|2");
  const plaintext = new TextEncoder().encode("s3cret");
  const sealed = await seal(key, plaintext, aad, systemRandom);

  await assertOpenFails(open(key, sealed, new TextEncoder().encode("app/db|3")));
  await assertOpenFails(open(key, sealed, new Uint8Array(0)));
  const otherKey = new Uint8Array(key);
  otherKey[0] = 4;
  await assertOpenFails(open(otherKey, sealed, aad));
  await assertOpenFails(open(await importAeadKey(otherKey), sealed, aad));
  await assertOpenFails(
    open(key, new Uint8Array([...sealed, 0]), aad),
  );
  for (const version of [0, 2, 0xff]) {
    const other = new Uint8Array(sealed);
    other[0] = version;
    await assertOpenFails(open(key, other, aad));
  }
  // The untouched record still opens: the failures above are real.
  assert.deepEqual(await open(key, sealed, aad), plaintext);
});

Deno.test("decryptGcm rejects tampering and short input alike", async () => {
  const key = new Uint8Array(32).fill(8);
  const nonce = new Uint8Array(12).fill(1);
  const ct = await encryptGcm(key, nonce, new Uint8Array(10), new Uint8Array(0));
  const otherNonce = new Uint8Array(nonce);
  otherNonce[11] = 2;
  await assertOpenFails(decryptGcm(key, otherNonce, ct));
  await assertOpenFails(decryptGcm(key, nonce, ct.subarray(0, 15)));
  await assertOpenFails(decryptGcm(key, nonce, new Uint8Array(0)));
  await assertOpenFails(decryptGcm(key, nonce, ct, new Uint8Array([1])));
});

Deno.test("error messages never carry the data", async () => {
  const key = new Uint8Array(32).fill(0x41);
  const plaintext = new TextEncoder().encode("TOPSECRETVALUE");
  const sealed = await seal(key, plaintext, new Uint8Array(0), systemRandom);
  sealed[sealed.length - 1] = sealed[sealed.length - 1]! ^ 1;
  try {
    await open(key, sealed, new Uint8Array(0));
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof CryptoError);
    const text = `${err.message} ${err.stack}`;
    assert.ok(!text.includes("TOPSECRETVALUE"));
    assert.ok(!text.includes(bytesToHex(key).slice(0, 16)));
    assert.ok(!text.includes("AAAA"));
  }
});

Deno.test("malformed keys, nonces and random sources are refused", async () => {
  const key = new Uint8Array(32);
  const nonce = new Uint8Array(NONCE_LENGTH);
  const empty = new Uint8Array(0);
  const aesCbc = await crypto.subtle.importKey(
    "raw",
    key,
    "AES-CBC",
    false,
    ["encrypt", "decrypt"],
  );
  const aes128 = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(16),
    "AES-GCM",
    false,
    ["encrypt", "decrypt"],
  );
  const cases: [string, () => Promise<unknown>][] = [
    ["16-byte key", () => encryptGcm(new Uint8Array(16), nonce, empty)],
    ["33-byte key", () => seal(new Uint8Array(33), empty, empty, systemRandom)],
    ["AES-CBC CryptoKey", () => encryptGcm(aesCbc, nonce, empty)],
    ["AES-128 CryptoKey", () => encryptGcm(aes128, nonce, empty)],
    ["key of wrong type", () => encryptGcm("k" as never, nonce, empty)],
    ["11-byte nonce", () => encryptGcm(key, new Uint8Array(11), empty)],
    ["16-byte nonce", () => decryptGcm(key, new Uint8Array(16), empty)],
    ["plaintext not bytes", () => encryptGcm(key, nonce, "x" as never)],
    ["aad not bytes", () => seal(key, empty, "x" as never, systemRandom)],
    ["short random", () => seal(key, empty, empty, () => new Uint8Array(8))],
    ["bad key on a short record", () => open(new Uint8Array(5), empty, empty)],
    ["importAeadKey 31 bytes", () => importAeadKey(new Uint8Array(31))],
  ];
  for (const [name, run] of cases) {
    await assert.rejects(run(), CryptoError, name);
  }
});
