/**
 * An {@linkcode IdentitySource} reading SVID files in spiffe-helper's layout:
 * `svid.pem` (leaf first, then intermediates), `svid_key.pem` (PKCS#8) and
 * `svid_bundle.pem`.
 *
 * The helper may replace the files at any time, one after the other, so a
 * reader can see a new key next to an old certificate. Such a set is not
 * taken: an identity is published only when the three files parse and the
 * key belongs to the leaf. Changes are noticed through `fs.watch`, with a
 * cheap `stat` poll behind it for filesystems where events do not arrive
 * (network mounts, some container volume drivers).
 *
 * Only `node:*` modules are used, so the SDK built from this file runs on
 * Node as well as Deno.
 *
 * @module
 */

import { type FSWatcher, watch as watchDir } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { IdentitySource, X509Identity } from "./identity.ts";
import { buildIdentity, IdentitySourceError } from "./identity_check.ts";
import { createIdentityState } from "./identity_state.ts";
import { pemToDerList } from "./pem.ts";
import { type Logger, silentLogger } from "../log/logger.ts";

/** spiffe-helper's file names. */
export const SVID_FILE_NAMES = Object.freeze({
  cert: "svid.pem",
  key: "svid_key.pem",
  bundle: "svid_bundle.pem",
});

/** Options for {@linkcode createFileSource}. */
export interface FileSourceOptions {
  /** How often the files are `stat`ed when no event arrives; default 1000 ms. */
  pollIntervalMs?: number;
  /** How long ready() waits for a consistent set of files; default 10 000 ms. */
  readyTimeoutMs?: number;
  /** Quiet time after the last file event before reloading; default 50 ms. */
  debounceMs?: number;
  /** Use `fs.watch` besides polling; default true (false: poll only). */
  watch?: boolean;
  /** Diagnostics (rotations, ignored file sets); default silent. */
  log?: Logger;
}

/**
 * Watches `dir` for an X.509-SVID in spiffe-helper's layout.
 *
 * ready() rejects at once when `dir` does not exist (a misconfiguration, not
 * a race), and after `readyTimeoutMs` when the files stay missing or
 * inconsistent, with the last problem as message, e.g.
 * `no SVID in /run/svid: svid.pem missing`.
 */
export function createFileSource(dir: string, options: FileSourceOptions = {}): IdentitySource {
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const debounceMs = options.debounceMs ?? 50;
  const log = options.log ?? silentLogger;
  const name = `SVID files in ${dir}`;

  let lastError: IdentitySourceError | undefined;
  const state = createIdentityState({
    readyTimeoutMs,
    log,
    name,
    timeoutError: () =>
      lastError ?? new IdentitySourceError("timeout", `no SVID in ${dir}: nothing loaded within ${readyTimeoutMs} ms`),
  });

  let watcher: FSWatcher | undefined;
  const stopWatcher = () => {
    const w = watcher;
    watcher = undefined;
    w?.close();
  };

  let lastFingerprint = "";
  let wantRun = false;
  let wantForce = false;
  let running: Promise<void> | undefined;

  const reloadOnce = async (force: boolean) => {
    const fingerprint = await fingerprintOf(dir);
    if (!force && fingerprint === lastFingerprint) return;
    lastFingerprint = fingerprint;
    try {
      const identity = await loadSvidFiles(dir);
      const first = !state.hasIdentity;
      if (state.publish(identity)) {
        log.info(first ? "SVID loaded" : "SVID rotated", { source: name, spiffeId: identity.spiffeId });
      }
      lastError = undefined;
    } catch (e) {
      if (!(e instanceof IdentitySourceError)) throw e;
      lastError = e;
      // A watcher of a removed directory never sees its successor: drop it, and the poll starts a new one.
      if (e.message === dirMissing(dir)) stopWatcher();
      if (state.hasIdentity) log.warn("ignoring SVID files until consistent", { source: name, error: e.message });
      // A missing directory is a misconfiguration, not a race with the helper: say so now.
      else if (e.message === dirMissing(dir)) state.fail(e);
    }
  };

  // One reload at a time; requests arriving meanwhile fold into one more pass.
  const requestReload = (force: boolean) => {
    wantRun = true;
    wantForce ||= force;
    if (running !== undefined || state.closed) return;
    running = (async () => {
      while (wantRun && !state.closed) {
        const f = wantForce;
        wantRun = wantForce = false;
        try {
          await reloadOnce(f);
        } catch (e) {
          log.error("reading SVID files failed", { source: name, error: e instanceof Error ? e.message : String(e) });
        }
      }
    })().finally(() => running = undefined);
  };

  let debounce: ReturnType<typeof setTimeout> | undefined;
  const startWatcher = () => {
    if (watcher !== undefined || state.closed || options.watch === false) return;
    let current: FSWatcher;
    try {
      // Not persistent: the poll timer already keeps the process alive until close().
      current = watchDir(dir, { persistent: false }, () => {
        if (debounce !== undefined) clearTimeout(debounce);
        debounce = setTimeout(() => {
          debounce = undefined;
          requestReload(true);
        }, debounceMs);
      });
    } catch {
      // The directory may not exist yet; the poll retries.
      return;
    }
    watcher = current;
    const ended = (e?: unknown) => {
      if (e !== undefined) {
        log.debug("SVID directory watch ended", { source: name, error: e instanceof Error ? e.message : String(e) });
      }
      if (watcher === current) stopWatcher();
    };
    current.on("error", ended);
    current.on("close", () => ended());
  };

  const poll = setInterval(() => {
    startWatcher();
    requestReload(false);
  }, pollIntervalMs);
  startWatcher();
  requestReload(true);

  return {
    ready: () => state.ready(),
    current: () => state.current(),
    onChange: (listener) => state.onChange(listener),
    async close() {
      if (state.closed) return;
      state.close();
      clearInterval(poll);
      if (debounce !== undefined) clearTimeout(debounce);
      debounce = undefined;
      stopWatcher();
      await running;
    },
  };
}

/**
 * Reads and checks one SVID from `dir` (no watching).
 *
 * @throws {IdentitySourceError} `missing` naming the absent directory or
 *   file, or `invalid_svid` naming what is wrong with the files.
 */
export async function loadSvidFiles(dir: string): Promise<X509Identity> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new IdentitySourceError("missing", `no SVID in ${dir}: not a directory`);
  } catch (e) {
    if (isNotFound(e)) throw new IdentitySourceError("missing", dirMissing(dir));
    throw e;
  }
  // Read together: each read is several file operations, and a start waits for all three.
  const [cert, bundle, key] = await Promise.allSettled([
    readSvidFile(dir, SVID_FILE_NAMES.cert),
    readSvidFile(dir, SVID_FILE_NAMES.bundle),
    readSvidFile(dir, SVID_FILE_NAMES.key),
  ]);
  if (cert.status === "rejected" || bundle.status === "rejected" || key.status === "rejected") {
    // The key may have been read although another file is missing: zero it before reporting.
    if (key.status === "fulfilled") key.value.fill(0);
    throw [cert, bundle, key].find((read) => read.status === "rejected")!.reason;
  }
  const certPem = cert.value;
  const bundlePem = bundle.value;
  const keyPem = key.value;
  let keyDer: Uint8Array[] = [];
  try {
    const invalid = (file: string, why: string) =>
      new IdentitySourceError("invalid_svid", `no SVID in ${dir}: ${file} ${why}`);
    const chainDer = parseOrThrow(
      () => pemToDerList(certPem, "CERTIFICATE"),
      () => invalid(SVID_FILE_NAMES.cert, "is not valid PEM"),
    );
    if (chainDer.length === 0) throw invalid(SVID_FILE_NAMES.cert, "holds no CERTIFICATE");
    const bundleDer = parseOrThrow(
      () => pemToDerList(bundlePem, "CERTIFICATE"),
      () => invalid(SVID_FILE_NAMES.bundle, "is not valid PEM"),
    );
    if (bundleDer.length === 0) throw invalid(SVID_FILE_NAMES.bundle, "holds no CERTIFICATE");
    keyDer = parseOrThrow(
      () => pemToDerList(keyPem, "PRIVATE KEY"),
      () => invalid(SVID_FILE_NAMES.key, "is not valid PEM"),
    );
    if (keyDer.length !== 1) {
      throw invalid(SVID_FILE_NAMES.key, `holds ${keyDer.length} PKCS#8 PRIVATE KEY blocks, want 1`);
    }
    return buildIdentity({ chainDer, keyDer: keyDer[0]!, bundleDer }, `no SVID in ${dir}`);
  } finally {
    keyPem.fill(0);
    for (const der of keyDer) der.fill(0);
  }
}

/** A missing file or directory, as `node:fs` reports it in Node and Deno alike. */
function isNotFound(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "ENOENT";
}

function dirMissing(dir: string): string {
  return `no SVID in ${dir}: directory missing`;
}

async function readSvidFile(dir: string, file: string): Promise<Uint8Array> {
  try {
    const bytes = await readFile(join(dir, file));
    // The same memory as a plain Uint8Array, so callers can zero it.
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (e) {
    if (isNotFound(e)) {
      throw new IdentitySourceError("missing", `no SVID in ${dir}: ${file} missing`);
    }
    throw e;
  }
}

/** Runs `parse`; a parse failure becomes `error()` (PEM errors never quote key bytes, but stay generic anyway). */
function parseOrThrow<T>(parse: () => T, error: () => IdentitySourceError): T {
  try {
    return parse();
  } catch {
    throw error();
  }
}

/** Identity, size and times of the three files: changes whenever any is replaced or rewritten. */
async function fingerprintOf(dir: string): Promise<string> {
  const parts = await Promise.all(
    Object.values(SVID_FILE_NAMES).map(async (file) => {
      try {
        const info = await stat(join(dir, file));
        return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
      } catch {
        return "-";
      }
    }),
  );
  return parts.join("|");
}
