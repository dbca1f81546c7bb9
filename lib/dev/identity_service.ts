/**
 * `spike dev identities`: the development CA as a service, for stacks whose
 * roles run as separate processes or containers (the compose demo). It
 * mints an SVID for every role — Nexus, each Keeper, Bootstrap, the Pilot
 * superuser, recover and restore roles — and any named workloads, into
 * `<out>/<name>/` in spiffe-helper's layout, and can keep renewing them all
 * before half their lifetime has passed. Each file is replaced atomically;
 * the roles notice new files and use them for new connections
 * (`lib/spiffe/file_source.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { loadOrCreateDevCa, writeSvidFiles } from "../spiffe/dev_ca.ts";
import { loadSvidFiles } from "../spiffe/file_source.ts";
import { pemToDerList } from "../spiffe/pem.ts";
import { X509Certificate } from "../spiffe/x509.ts";
import { devIdentityPaths } from "./identities.ts";

/** What to mint, and where. */
export interface IdentityServiceOptions {
  /** The CA directory (created on first use). */
  readonly caDir: string;
  /** Where `<name>/svid.pem` etc. are written. */
  readonly outDir: string;
  /** Trust domain of every identity. */
  readonly trustDomain: string;
  /** How many Keepers (`keeper-1` … `keeper-N`). */
  readonly keepers: number;
  /** Extra workloads: directory name → SPIFFE ID path (under `spiffe://<td>/`). */
  readonly workloads: Readonly<Record<string, string>>;
  /** Lifetime of each SVID, in seconds. */
  readonly ttlSeconds: number;
}

/** Directory name → SPIFFE ID of everything the service mints. */
export function identityTargets(options: IdentityServiceOptions): Map<string, string> {
  const targets = new Map<string, string>();
  const add = (name: string, path: string) => {
    if (targets.has(name)) throw new RangeError(`identity '${name}' is named twice`);
    targets.set(name, `spiffe://${options.trustDomain}/${path}`);
  };
  for (const [name, path] of Object.entries(devIdentityPaths(options.keepers))) add(name, path);
  for (const [name, path] of Object.entries(options.workloads)) add(name, path);
  return targets;
}

/** Mints every SVID once; resolves with when they expire (ms since the epoch). */
export async function mintAll(options: IdentityServiceOptions): Promise<number> {
  const ca = await loadOrCreateDevCa(options.caDir, { trustDomain: options.trustDomain });
  let expires = Infinity;
  for (const [name, spiffeId] of identityTargets(options)) {
    const identity = await ca.issue(spiffeId, { ttlSeconds: options.ttlSeconds });
    try {
      await writeSvidFiles(join(options.outDir, name), identity);
    } finally {
      identity.privateKeyPem.fill(0);
    }
    expires = Math.min(expires, notAfter(identity.certChainPem));
  }
  return expires;
}

/**
 * Checks the SVIDs in place: each present, consistent, for the expected
 * SPIFFE ID, and valid for at least `minValidMs` more. Resolves with the
 * problems found (none: healthy).
 */
export async function checkIdentities(
  options: IdentityServiceOptions,
  minValidMs: number,
  now: () => number = Date.now,
): Promise<string[]> {
  const problems: string[] = [];
  for (const [name, spiffeId] of identityTargets(options)) {
    try {
      const identity = await loadSvidFiles(join(options.outDir, name));
      if (identity.spiffeId !== spiffeId) problems.push(`${name}: holds ${identity.spiffeId}, not ${spiffeId}`);
      else if (notAfter(identity.certChainPem) - now() < minValidMs) {
        problems.push(`${name}: expires at ${iso(notAfter(identity.certChainPem))}`);
      }
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
    }
  }
  return problems;
}

/** A running renewal loop. */
export interface Renewal {
  /** Stops renewing; resolves once no write is in flight. */
  stop(): Promise<void>;
}

/**
 * Mints now, then again whenever half the lifetime has passed, until
 * stopped. A failed round (a full disk, say) is reported and retried after
 * `retryMs`, while the SVIDs in place are still valid.
 */
export async function startRenewal(
  options: IdentityServiceOptions,
  report: (line: string) => void,
  retryMs = 5_000,
  now: () => number = Date.now,
): Promise<Renewal> {
  let expires = await mintAll(options);
  report(`minted ${identityTargets(options).size} SVIDs into ${options.outDir}, valid until ${iso(expires)}`);
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let round: Promise<void> | undefined;
  const schedule = (ms: number) => {
    if (!stopped) timer = setTimeout(() => round = renew().finally(() => round = undefined), ms);
  };
  const halfLife = () => Math.max(1000, (options.ttlSeconds * 1000) / 2);
  const renew = async () => {
    try {
      expires = await mintAll(options);
      report(`renewed every SVID, valid until ${iso(expires)}`);
      schedule(halfLife());
    } catch (error) {
      report(
        `renewing failed (retrying in ${retryMs} ms; current SVIDs valid until ${iso(expires)}): ${
          (error as Error).message
        }`,
      );
      schedule(Math.max(0, Math.min(retryMs, expires - now())));
    }
  };
  schedule(halfLife());
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
    },
  };
}

/** When the leaf certificate of a chain expires (ms since the epoch). */
function notAfter(certChainPem: string): number {
  const leaf = pemToDerList(certChainPem, "CERTIFICATE")[0]!;
  return new X509Certificate(leaf as Uint8Array<ArrayBuffer>).notAfter.getTime();
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
