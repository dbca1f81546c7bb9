/**
 * A real `spike nexus` process (SQLite, mTLS, identities from `spike dev
 * identity`) given its root key by `spike operator restore`, for suites that
 * test a workload-side command against it. It can be killed and started
 * again on the same port and data, and restored with the same shards, to
 * test how clients ride out an outage.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { systemRandom } from "../../lib/crypto/random.ts";
import { generateRootKey } from "../../lib/crypto/root_key.ts";
import { splitSecret } from "../../lib/crypto/shamir.ts";
import { SQLITE_FILE_NAME } from "../../lib/store/sqlite_files.ts";
import { formatRecoveryShard } from "../../lib/pilot/recovery_file.ts";
import { type CommandResult, freePort, runSpike, SpikeProcess, waitForReady } from "./process.ts";

const TD = "spiffe://spike.ist";

/** A running Nexus with helpers to act as a role against it. */
export interface RestoredNexus {
  /** Scratch directory (removed by `close`). */
  readonly dir: string;
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  /** The API port (also serves the plain `/ready` and `/metrics`). */
  readonly port: number;
  /** The SQLite file, when Nexus runs on SQLite. */
  readonly sqliteFile?: string;
  /** The current Nexus process (replaced by `restart`). */
  readonly process: SpikeProcess;
  /** Mints an SVID for `spiffe://spike.ist/<idPath>` into `out` (default a fresh directory); returns the directory. */
  mint(idPath: string, options?: { out?: string; ttl?: string }): Promise<string>;
  /** Environment for a `spike` child using the SVID in `svidDir`. */
  env(svidDir: string, extra?: Record<string, string>): Record<string, string>;
  /** Runs `spike <args>` as the Pilot superuser. */
  admin(args: string[], stdin?: string): Promise<CommandResult>;
  /** Kills Nexus with SIGKILL. */
  kill(): Promise<void>;
  /** Starts Nexus again (same port and data); it answers 503 until `restore`. */
  restart(): Promise<void>;
  /** Hands Nexus its root key (two shards) and waits until it is ready. */
  restore(): Promise<void>;
  /** Stops Nexus and removes the scratch directory. */
  close(): Promise<void>;
}

/** Asserts exit code `code`, with the output in the message. */
export function exits(result: CommandResult, code: number, what: string): CommandResult {
  assert.equal(result.code, code, `${what}: exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** Options of {@linkcode startRestoredNexus}. */
export interface RestoredNexusOptions {
  /** Run on this Postgres database instead of SQLite. */
  readonly postgresUrl?: string;
  /** The root key to restore (default: a fresh random one); the caller owns it. */
  readonly rootKey?: Uint8Array;
  /** Called with the data directory before Nexus first starts (to lay down an older store). */
  prepare?(dataDir: string): Promise<void>;
  /** Nexus settings added to its environment, given the fixture's directory. */
  nexusEnv?(dir: string): Record<string, string>;
}

/** Starts Nexus, restores its key, and leaves a superuser identity ready. */
export async function startRestoredNexus(prefix: string, options: RestoredNexusOptions = {}): Promise<RestoredNexus> {
  const dir = await Deno.makeTempDir({ prefix });
  const dataDir = join(dir, "data");
  const ca = join(dir, "ca");
  const port = freePort();
  const url = `https://127.0.0.1:${port}`;
  let minted = 0;
  const mint = async (idPath: string, options: { out?: string; ttl?: string } = {}) => {
    const out = options.out ?? join(dir, "ids", `${minted++}`);
    exits(
      await runSpike(["dev", "identity", `${TD}/${idPath}`, "--dir", ca, "--out", out, "--ttl", options.ttl ?? "1h"]),
      0,
      `dev identity ${idPath}`,
    );
    return out;
  };
  const nexusId = await mint("spike/nexus");
  const [superuser, restorer] = await Promise.all([
    mint("spike/pilot/role/superuser"),
    mint("spike/pilot/role/restore"),
  ]);
  const env = (svidDir: string, extra: Record<string, string> = {}) => ({
    SPIKE_SVID_DIR: svidDir,
    SPIKE_NEXUS_API_URL: url,
    SPIKE_PILOT_RECOVERY_DIR: join(dir, "recover"),
    ...extra,
  });
  const rootKey = options.rootKey ?? generateRootKey(systemRandom);
  const shares = splitSecret(rootKey, 3, 2);
  // A key the fixture made is needed only as shards from here on; the caller's is the caller's to zero.
  if (rootKey !== options.rootKey) rootKey.fill(0);
  const backend: Record<string, string> = options.postgresUrl
    ? { SPIKE_NEXUS_BACKEND_STORE: "postgres", SPIKE_NEXUS_POSTGRES_URL: options.postgresUrl }
    : { SPIKE_NEXUS_BACKEND_STORE: "sqlite", SPIKE_NEXUS_DATA_DIR: dataDir };
  await options.prepare?.(dataDir);
  const start = async () => {
    const child = new SpikeProcess(["nexus"], {
      env: {
        SPIKE_SVID_DIR: nexusId,
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${port}`,
        ...backend,
        SPIKE_NEXUS_KEEPER_PEERS: "",
        ...options.nexusEnv?.(dir),
      },
    });
    await child.waitFor(/nexus listening/);
    return child;
  };
  let process = await start();
  const fixture: RestoredNexus = {
    dir,
    url,
    port,
    ...(options.postgresUrl ? {} : { sqliteFile: join(dataDir, SQLITE_FILE_NAME) }),
    get process() {
      return process;
    },
    mint,
    env,
    admin: (args, stdin) => runSpike(args, { env: env(superuser), ...(stdin === undefined ? {} : { stdin }) }),
    async kill() {
      await process.stop("SIGKILL");
    },
    async restart() {
      process = await start();
    },
    async restore() {
      for (const share of [shares[0]!, shares[2]!]) {
        const line = formatRecoveryShard(share.index, share.value) + "\n";
        exits(await runSpike(["operator", "restore"], { env: env(restorer), stdin: line }), 0, "operator restore");
      }
      await waitForReady(port, 15_000);
    },
    async close() {
      await process.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
  await fixture.restore();
  return fixture;
}
