/**
 * A real deployment for the root key rotation suites: Keeper processes,
 * one or more `spike nexus` processes on SQLite or one Postgres database
 * (each can be killed with SIGKILL and started again, with extra settings
 * such as a rotation pause), Bootstrap, and the CLI as every Pilot role.
 *
 * @module
 */
import { join } from "node:path";
import { NexusClient } from "../../lib/client/nexus_client.ts";
import { mintDevIdentities } from "../../lib/dev/identities.ts";
import { createMtlsClient, type MtlsClient } from "../../lib/spiffe/mtls_client.ts";
import { isNexus } from "../../lib/spiffe/roles.ts";
import { createFileSource } from "../../lib/spiffe/file_source.ts";
import type { IdentitySource } from "../../lib/spiffe/identity.ts";
import { loadOrCreateDevCa, writeSvidFiles } from "../../lib/spiffe/dev_ca.ts";
import { SQLITE_FILE_NAME } from "../../lib/store/sqlite_files.ts";
import { exits } from "./restored_nexus.ts";
import { type CommandResult, eventually, freePort, runSpike, SpikeProcess, waitForReady } from "./process.ts";

/** Where the Nexus instances keep their data. */
export type StackBackend = { readonly sqlite: true } | { readonly postgresUrl: string };

/** Options of {@linkcode startRotationStack}. */
export interface RotationStackOptions {
  /** Storage (default SQLite). */
  readonly backend?: StackBackend;
  /** Nexus instances (default 1). */
  readonly nexusCount?: number;
  /** Keepers (default 3; the threshold is 2). */
  readonly keepers?: number;
  /** Settings every Nexus gets. */
  readonly nexusEnv?: Record<string, string>;
}

/** The running deployment. */
export interface RotationStack {
  /** Scratch directory. */
  readonly dir: string;
  /** The SQLite file (SQLite backend only). */
  readonly sqliteFile?: string;
  /** Base URL of Nexus `i`. */
  nexusUrl(i?: number): string;
  /** API port of Nexus `i`. */
  nexusPort(i?: number): number;
  /** The process of Nexus `i`. */
  nexus(i?: number): SpikeProcess;
  /** Starts Nexus `i` again (after `kill`), with `env` on top of the usual settings. */
  startNexus(i?: number, env?: Record<string, string>): Promise<SpikeProcess>;
  /** Kills Nexus `i` with SIGKILL. */
  kill(i?: number): Promise<void>;
  /** Runs Bootstrap through Nexus 0 and waits until every Nexus is ready. */
  bootstrap(): Promise<void>;
  /** Runs `spike <args>` as a Pilot role (`superuser`, `recover`, `restore`) against Nexus `i`. */
  as(
    role: "superuser" | "recover" | "restore",
    args: string[],
    options?: { stdin?: string; nexus?: number; recoveryDir?: string },
  ): Promise<CommandResult>;
  /** The identity directory of a workload, minted on first use. */
  workload(path: string): Promise<string>;
  /** A raw API client (no retries) as the superuser, to Nexus `i`. */
  client(i?: number): Promise<NexusClient>;
  /** `spike operator status -f json` as the superuser. */
  status(nexus?: number): Promise<StackStatus>;
  /** Stops everything (processes get SIGTERM) and removes the directory. */
  close(): Promise<void>;
}

/** The fields of `operator status` the suites read. */
export interface StackStatus {
  readonly ready: boolean;
  readonly rotation: {
    readonly keyVersion: number;
    readonly writeKeyVersion: number | null;
    readonly heldKeyVersions: number[];
    readonly phase: string;
    readonly targetKeyVersion: number | null;
    readonly toReseal: number;
    readonly remaining: number;
    readonly lastError?: string;
  };
  readonly retiredKeyVersions: { version: number; retiredAt: string | null }[];
  readonly keepers: { url: string; versioned?: boolean; versions: number[] }[];
}

/** Starts Keepers and Nexus instances (not bootstrapped yet). */
export async function startRotationStack(options: RotationStackOptions = {}): Promise<RotationStack> {
  const dir = await Deno.makeTempDir({ prefix: "spike_rotation_stack_" });
  const keeperCount = options.keepers ?? 3;
  const nexusCount = options.nexusCount ?? 1;
  const ids = await mintDevIdentities(dir, "spike.ist", keeperCount);
  const ca = await loadOrCreateDevCa(join(dir, "ca"));
  const keeperPorts = Array.from({ length: keeperCount }, () => freePort());
  const nexusPorts = Array.from({ length: nexusCount }, () => freePort());
  const urlOf = (port: number) => `https://127.0.0.1:${port}`;
  const shared = {
    SPIKE_NEXUS_KEEPER_PEERS: keeperPorts.map(urlOf).join(","),
    SPIKE_NEXUS_SHAMIR_SHARES: String(keeperCount),
    SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
  };
  const backend = options.backend ?? { sqlite: true };
  const dataDir = join(dir, "data");
  const storeEnv: Record<string, string> = "postgresUrl" in backend
    ? { SPIKE_NEXUS_BACKEND_STORE: "postgres", SPIKE_NEXUS_POSTGRES_URL: backend.postgresUrl }
    : { SPIKE_NEXUS_BACKEND_STORE: "sqlite", SPIKE_NEXUS_DATA_DIR: dataDir };
  const processes = new Set<SpikeProcess>();
  const nexuses: SpikeProcess[] = [];
  const clients: MtlsClient[] = [];
  const identities: IdentitySource[] = [];
  const workloads = new Map<string, string>();

  const startProcess = async (args: string[], env: Record<string, string>, ready: RegExp) => {
    const child = new SpikeProcess(args, { env });
    processes.add(child);
    await child.waitFor(ready);
    return child;
  };
  const startNexus = async (i = 0, env: Record<string, string> = {}) => {
    const child = await startProcess(["nexus"], {
      ...shared,
      ...storeEnv,
      SPIKE_SVID_DIR: ids.dirOf("nexus"),
      SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPorts[i]}`,
      SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "1s",
      SPIKE_NEXUS_ROTATION_LEASE: "1s",
      SPIKE_NEXUS_AUDIT_LOG: join(dir, `audit-${i}.log`),
      ...options.nexusEnv,
      ...env,
    }, /nexus listening/);
    nexuses[i] = child;
    return child;
  };

  await Promise.all([
    ...keeperPorts.map((port, i) =>
      startProcess(
        ["keeper"],
        { SPIKE_SVID_DIR: ids.dirOf(`keeper-${i + 1}`), SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}` },
        /keeper listening/,
      )
    ),
    ...nexusPorts.map((_, i) => startNexus(i)),
  ]);

  const stack: RotationStack = {
    dir,
    ...("postgresUrl" in backend ? {} : { sqliteFile: join(dataDir, SQLITE_FILE_NAME) }),
    nexusUrl: (i = 0) => urlOf(nexusPorts[i]!),
    nexusPort: (i = 0) => nexusPorts[i]!,
    nexus: (i = 0) => nexuses[i]!,
    startNexus,
    async kill(i = 0) {
      const child = nexuses[i]!;
      await child.stop("SIGKILL");
      processes.delete(child);
    },
    async bootstrap() {
      exits(
        await runSpike(["bootstrap"], {
          env: { ...shared, SPIKE_SVID_DIR: ids.dirOf("bootstrap"), SPIKE_NEXUS_API_URL: urlOf(nexusPorts[0]!) },
        }),
        0,
        "bootstrap",
      );
      await Promise.all(nexusPorts.map((port) => waitForReady(port)));
    },
    as: (role, args, o = {}) =>
      runSpike(args, {
        env: {
          SPIKE_SVID_DIR: ids.dirOf(`pilot-${role}`),
          SPIKE_NEXUS_API_URL: urlOf(nexusPorts[o.nexus ?? 0]!),
          SPIKE_PILOT_RECOVERY_DIR: o.recoveryDir ?? join(dir, "recover"),
        },
        ...(o.stdin === undefined ? {} : { stdin: o.stdin }),
        timeoutMs: 180_000,
      }),
    async workload(path) {
      let out = workloads.get(path);
      if (!out) {
        out = join(dir, "workloads", path.replaceAll("/", "_"));
        await writeSvidFiles(out, await ca.issue(`spiffe://spike.ist/${path}`));
        workloads.set(path, out);
      }
      return out;
    },
    async client(i = 0) {
      const identity = createFileSource(ids.dirOf("pilot-superuser"));
      identities.push(identity);
      await identity.ready();
      const transport = createMtlsClient({ identity, serverId: (id) => isNexus(id), timeoutMs: 30_000 });
      clients.push(transport);
      return new NexusClient(urlOf(nexusPorts[i]!), transport);
    },
    async status(nexus = 0) {
      const result = exits(await stack.as("superuser", ["operator", "status", "-f", "json"], { nexus }), 0, "status");
      return JSON.parse(result.stdout) as StackStatus;
    },
    async close() {
      for (const client of clients) client.close();
      await Promise.all(identities.map((identity) => identity.close()));
      await Promise.all([...processes].map((child) => child.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return stack;
}

/**
 * Polls `check` every 250 ms (most checks run the CLI, half a second each)
 * until true; throws naming `what` after `timeoutMs`.
 */
export function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  return eventually(check, what, timeoutMs, 250);
}
