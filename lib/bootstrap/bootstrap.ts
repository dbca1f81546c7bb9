/**
 * Bootstrap, the one-shot that gives a new deployment its root key: make a
 * random key, split it, hand shard i to Keeper i, then prove Nexus rebuilt
 * the same key through `/v1/bootstrap/verify`.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { PATHS } from "../api/paths.ts";
import { encryptGcm } from "../crypto/aead.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { generateRootKey } from "../crypto/root_key.ts";
import { splitSecret } from "../crypto/shamir.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Transport, TransportResponse } from "../client/transport.ts";
import type { Logger } from "../log/logger.ts";

/** Why Bootstrap stopped without success. */
export class BootstrapError extends Error {
  /** Creates an error with an operator-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "BootstrapError";
  }
}

/** What Bootstrap needs. */
export interface BootstrapOptions {
  /** Nexus base URL. */
  readonly nexusUrl: string;
  /** Keeper base URLs; Keeper i gets share index i+1. */
  readonly keeperPeers: readonly string[];
  /** Shamir threshold. */
  readonly threshold: number;
  /** Proceed even if Nexus already has a key or data. */
  readonly force: boolean;
  /** mTLS transport that accepts only Nexus IDs. */
  readonly nexus: Transport;
  /** mTLS transport that accepts only Keeper IDs. */
  readonly keepers: Transport;
  /** Random source. */
  readonly random: RandomBytes;
  /** Structured log (never given key material). */
  readonly log: Logger;
  /** Overall deadline in ms (default 120 s). */
  readonly timeoutMs?: number;
  /** Clock for the deadline (default `Date.now`). */
  readonly now?: () => number;
}

const JSON_HEADERS = { "content-type": "application/json" };

/** Runs Bootstrap; resolves when Nexus has proven it holds the new key. */
export async function runBootstrap(options: BootstrapOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const deadline = now() + (options.timeoutMs ?? 120_000);
  const { log } = options;

  const state = await probeNexus(options, deadline, now);
  if (state !== "empty") {
    const what = state === "has-key" ? "already holds a root key" : "already keeps data sealed under a root key";
    if (!options.force) {
      throw new BootstrapError(
        `Nexus ${what}; refusing to make a new one (set SPIKE_BOOTSTRAP_FORCE=true to override)`,
      );
    }
    log.warn(`Nexus ${what}; continuing because SPIKE_BOOTSTRAP_FORCE=true`);
  }

  const rootKey = generateRootKey(options.random);
  try {
    await distribute(options, rootKey, deadline, now);
    await verify(options, rootKey, deadline, now);
  } finally {
    zeroize(rootKey);
  }
  log.info("bootstrap complete: Nexus holds the new root key");
}

type NexusState = "empty" | "has-key" | "has-data";

/** Asks Nexus whether it already has a key (or data) before making one. */
async function probeNexus(options: BootstrapOptions, deadline: number, now: () => number): Promise<NexusState> {
  // A verify call with a throw-away ciphertext: 503 means "no key yet",
  // 400 means "a key is loaded and this did not open under it".
  const body = JSON.stringify({ nonce: b64(options.random(12)), ciphertext: b64(options.random(32)) });
  const response = await retry(
    options,
    "Nexus",
    deadline,
    now,
    () => options.nexus.post(`${options.nexusUrl}${PATHS.bootstrapVerify}`, body, JSON_HEADERS),
  );
  if (response.status === 503) return parse(response)?.initialized === true ? "has-data" : "empty";
  if (response.status === 400 || response.status === 200) return "has-key";
  throw new BootstrapError(`Nexus answered ${response.status} ${errCode(response)} to the bootstrap probe`);
}

async function distribute(options: BootstrapOptions, rootKey: Uint8Array, deadline: number, now: () => number) {
  const shares = splitSecret(rootKey, options.keeperPeers.length, options.threshold);
  try {
    await Promise.all(shares.map(async (share, i) => {
      const url = options.keeperPeers[i]!;
      const body = JSON.stringify({ shard: Array.from(share.value) });
      const response = await retry(
        options,
        `Keeper ${url}`,
        deadline,
        now,
        () => options.keepers.post(`${url}${PATHS.keeperContribute}`, body, JSON_HEADERS),
      );
      if (response.status !== 200) {
        throw new BootstrapError(`Keeper ${url} refused its shard: ${response.status} ${errCode(response)}`);
      }
      options.log.info("shard delivered", { keeper: url, index: share.index });
    }));
  } finally {
    for (const share of shares) zeroize(share.value);
  }
}

async function verify(options: BootstrapOptions, rootKey: Uint8Array, deadline: number, now: () => number) {
  const text = options.random(32);
  const nonce = options.random(12);
  try {
    const ciphertext = await encryptGcm(rootKey, nonce, text, new Uint8Array(0));
    const expected = new TextEncoder().encode(bytesToHex(sha256(text)));
    const body = JSON.stringify({ nonce: b64(nonce), ciphertext: b64(ciphertext) });
    let backoff = 200;
    while (true) {
      const response = await retry(
        options,
        "Nexus",
        deadline,
        now,
        () => options.nexus.post(`${options.nexusUrl}${PATHS.bootstrapVerify}`, body, JSON_HEADERS),
      );
      if (response.status === 200) {
        const hash = new TextEncoder().encode(String(parse(response)?.hash ?? ""));
        if (constantTimeEqual(hash, expected)) return;
        throw new BootstrapError("Nexus answered the verification with a wrong hash: it holds a different root key");
      }
      if (response.status === 400) {
        throw new BootstrapError(
          "Nexus holds a different root key (it did not rebuild the new one); restart Nexus or check the Keepers",
        );
      }
      if (response.status !== 503) {
        throw new BootstrapError(`Nexus answered ${response.status} ${errCode(response)} to verification`);
      }
      if (now() + backoff > deadline) {
        const data = parse(response)?.initialized === true;
        throw new BootstrapError(
          data
            ? "Nexus did not accept the new root key: it keeps data sealed under another key (wipe its data to start over)"
            : "timed out waiting for Nexus to rebuild the root key from the Keepers",
        );
      }
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(2000, backoff * 2);
    }
  } finally {
    zeroize(text);
  }
}

/** Retries a call while the peer is unreachable, with backoff, until the deadline. */
async function retry(
  options: BootstrapOptions,
  what: string,
  deadline: number,
  now: () => number,
  call: () => Promise<TransportResponse>,
): Promise<TransportResponse> {
  let backoff = 200;
  while (true) {
    try {
      return await call();
    } catch (error) {
      const message = (error as Error).message;
      if (now() + backoff > deadline) throw new BootstrapError(`${what} unreachable: ${message}`);
      options.log.info("waiting for peer", { peer: what, error: message });
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(5000, backoff * 2);
    }
  }
}

function parse(response: TransportResponse): Record<string, unknown> | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(response.body));
  } catch {
    return undefined;
  }
}

function errCode(response: TransportResponse): string {
  return String(parse(response)?.err ?? "");
}

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
