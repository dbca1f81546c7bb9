/**
 * Whole stacks as separate processes for the start-up and side-by-side
 * benchmarks: three Keepers, a Nexus on SQLite and a bootstrapped root key,
 * either ours (`deno run` with the flags of deno.json's `spike` task, as the
 * installed command runs) or SPIKE's Go binaries (`SPIKE_GO_BIN`), which
 * get their SVIDs from our Workload API server, one socket per process.
 *
 * Both stacks use the same SVIDs, minted by the development CA: the same
 * SPIFFE IDs (`spiffe://spike.ist/spike/...`) work for both.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { type DevIdentities, mintDevIdentities } from "../lib/dev/identities.ts";
import { forEachLine } from "../lib/dev/lines.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import type { X509Identity } from "../lib/spiffe/identity.ts";
import { isKeeper, isNexus } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { startWorkloadApiServer, type WorkloadApiServer } from "../lib/spiffe/workload_api_server.ts";
import { freePort } from "../tests/support/ports.ts";
import { findSpikeGoBinaries, type SpikeGoBinaries } from "../tests/support/spike_go.ts";

/** The repository root (where deno.json is). */
export const REPO_ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** Keepers per stack and the Shamir threshold. */
export const KEEPERS = 3;
/** Shares needed to rebuild the root key. */
export const THRESHOLD = 2;

/**
 * `deno` arguments that run `<root>/cmd/spike.ts` with the flags of that
 * tree's deno.json `spike` task and its config (as the installed command
 * runs: `deno install` puts the same flags and `--config` in its shim).
 */
export function spikeRunArgs(root: string = REPO_ROOT): string[] {
  const manifest = JSON.parse(Deno.readTextFileSync(join(root, "deno.json")));
  const words = String(manifest.tasks.spike).trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== "cmd/spike.ts") {
    throw new Error(`${root}/deno.json's spike task is not 'deno run ... cmd/spike.ts': ${manifest.tasks.spike}`);
  }
  return ["run", `--config=${join(root, "deno.json")}`, ...words.slice(2, -1), join(root, "cmd/spike.ts")];
}

/** A child process whose output lines are kept (the last 400). */
export class BenchProcess {
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();
  /** When it was spawned (`performance.now()` of this process). */
  readonly spawnedAt: number;
  /** Resolves with the exit status. */
  readonly exited: Promise<Deno.CommandStatus>;

  /** Spawns `executable args` with exactly `env` (plus PATH, HOME, DENO_DIR when set). */
  constructor(readonly name: string, executable: string, args: readonly string[], env: Record<string, string>) {
    const inherited: Record<string, string> = {};
    for (const key of ["PATH", "HOME", "DENO_DIR", "TMPDIR", "USER"]) {
      const value = Deno.env.get(key);
      if (value !== undefined) inherited[key] = value;
    }
    this.spawnedAt = performance.now();
    this.#child = new Deno.Command(executable, {
      args: [...args],
      env: { ...inherited, NO_COLOR: "1", ...env },
      clearEnv: true,
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const keep = (line: string) => {
      this.#lines.push(line);
      if (this.#lines.length > 400) this.#lines.shift();
      for (const listener of this.#listeners) listener(line);
    };
    this.exited = Promise.all([forEachLine(this.#child.stdout, keep), forEachLine(this.#child.stderr, keep)])
      .then(() => this.#child.status);
  }

  /** Process ID. */
  get pid(): number {
    return this.#child.pid;
  }

  /** The last output lines. */
  tail(count = 20): string {
    return this.#lines.slice(-count).join("\n");
  }

  /** Every kept line. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /** Calls `listener` with every later line. */
  onLine(listener: (line: string) => void): void {
    this.#listeners.add(listener);
  }

  /** Sends `signal` and waits for the exit. */
  async kill(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
    await this.exited;
  }
}

/** Polls `check` every `intervalMs` until it returns true; resolves with `performance.now()` at success. */
export async function pollUntil(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs: number,
  intervalMs = 2,
  process?: BenchProcess,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let exited = false;
  process?.exited.then(() => exited = true);
  let last = "no answer";
  while (performance.now() < deadline) {
    if (exited) throw new Error(`${process!.name} exited while waiting until ${what}:\n${process!.tail()}`);
    try {
      if (await check()) return performance.now();
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out waiting until ${what} (${last})${process ? `:\n${process.tail()}` : ""}`);
}

/** A client as the Pilot superuser, talking to Nexus only. */
export function superuserClient(identity: X509Identity, timeoutMs = 5000): MtlsClient {
  return createMtlsClient({ identity: createStaticSource(identity), serverId: (id) => isNexus(id), timeoutMs });
}

/**
 * Start-up probes: Keepers are asked as Nexus (SPIKE's Keepers refuse any
 * other caller during the handshake), Nexus as the Pilot superuser.
 */
function probeClients(ids: DevIdentities): { keepers: MtlsClient; nexus: MtlsClient; close(): void } {
  const keepers = createMtlsClient({
    identity: createStaticSource(ids.byName.get("nexus")!),
    serverId: (id) => isKeeper(id),
    timeoutMs: 5000,
  });
  const nexus = superuserClient(ids.byName.get("pilot-superuser")!);
  return {
    keepers,
    nexus,
    close() {
      keepers.close();
      nexus.close();
    },
  };
}

/**
 * How our processes run: this tree as deno.json's `spike` task does
 * (`current`), the same with V8's code cache off (`no-code-cache`), or
 * another checkout of the repository (`baseline`, given to
 * {@linkcode startOurStack}).
 */
export type RunVariant = "current" | "no-code-cache" | "baseline";

/** One stack under test. */
export interface BenchStack {
  /** `ours` or `spike-go`. */
  readonly kind: "ours" | "spike-go";
  /** Nexus's base URL. */
  readonly nexusUrl: string;
  /** The running Nexus. */
  readonly nexus: () => BenchProcess;
  /**
   * Kills Nexus with `signal` (default SIGKILL) and starts a new one;
   * resolves with it once spawned. `variant` (ours only): how to run it,
   * on the same data and Keepers (see {@linkcode RunVariant}).
   */
  restartNexus(signal?: Deno.Signal, variant?: RunVariant): Promise<BenchProcess>;
  /** The executable and arguments of the stack's CLI for `args` (e.g. `secret get p`), and its environment. */
  cli(
    args: readonly string[],
    variant?: RunVariant,
  ): { executable: string; args: string[]; env: Record<string, string> };
  /** Starts one more Keeper of this stack on a fresh port (cold-start measurements); the caller stops it. */
  startSpareKeeper(): Promise<{ process: BenchProcess; url: string }>;
  /** Stops every process. */
  stop(): Promise<void>;
}

/** Identities minted once for every stack of a run. */
export async function mintBenchIdentities(dir: string): Promise<DevIdentities> {
  return await mintDevIdentities(dir, "spike.ist", KEEPERS);
}

/** Stops `processes` (SIGTERM, then SIGKILL after 3 s). */
async function stopAll(processes: readonly BenchProcess[]): Promise<void> {
  await Promise.all(processes.map(async (p) => {
    const timer = setTimeout(() => p.kill("SIGKILL"), 3000);
    await p.kill("SIGTERM");
    clearTimeout(timer);
  }));
}

/** Waits until `url` answers an HTTPS request at all (any status) over mTLS. */
async function waitAnswering(client: MtlsClient, url: string, process: BenchProcess, timeoutMs = 60_000) {
  await pollUntil(
    async () => {
      await client.request("GET", url);
      return true;
    },
    `${process.name} answers`,
    timeoutMs,
    20,
    process,
  );
}

/** Waits until a secret read as the superuser succeeds (the root key is loaded). */
export async function waitSecretReadable(
  nexus: NexusClient,
  path: string,
  process: BenchProcess,
  timeoutMs = 60_000,
  intervalMs = 20,
): Promise<number> {
  return await pollUntil(
    async () => {
      await nexus.getSecret(path);
      return true;
    },
    `${process.name} serves ${path}`,
    timeoutMs,
    intervalMs,
    process,
  );
}

/** The secret every stack holds, for reads. */
export const BENCH_SECRET = "bench/startup";

/**
 * Starts our stack: three Keepers, Nexus on SQLite in `dir`, `spike
 * bootstrap`, then writes {@linkcode BENCH_SECRET}.
 */
export async function startOurStack(
  dir: string,
  ids: DevIdentities,
  options: {
    /** Run every process of this stack from another checkout (default: this tree). */
    root?: string;
    baselineRoot?: string;
    extraNexusEnv?: Record<string, string>;
    /** More `deno run` flags for Nexus only (e.g. `--cpu-prof`, `--v8-flags=...`; Deno merges repeated `--v8-flags`). */
    nexusDenoFlags?: readonly string[];
  } = {},
): Promise<BenchStack> {
  const run = spikeRunArgs(options.root);
  const baselineRun = options.baselineRoot === undefined ? undefined : spikeRunArgs(options.baselineRoot);
  const nexusFlags = options.nexusDenoFlags ?? [];
  const runOf = (variant: RunVariant = "current") => {
    if (variant === "current") return run;
    if (variant === "no-code-cache") return [run[0]!, "--no-code-cache", ...run.slice(1)];
    if (baselineRun === undefined) throw new Error("no baseline tree was given");
    return baselineRun;
  };
  const host = "127.0.0.1";
  const keeperPorts = Array.from({ length: KEEPERS }, () => freePort());
  const keeperUrls = keeperPorts.map((port) => `https://${host}:${port}`);
  const nexusPort = freePort();
  const nexusUrl = `https://${host}:${nexusPort}`;
  const dataDir = join(dir, "ours-data");
  const processes: BenchProcess[] = [];
  const keeper = (name: string, port: number) =>
    new BenchProcess(name, Deno.execPath(), [...run, "keeper"], {
      SPIKE_SVID_DIR: ids.dirOf(name.startsWith("spare") ? "keeper-1" : name),
      SPIKE_KEEPER_TLS_PORT: `${host}:${port}`,
    });
  const nexusEnv = {
    SPIKE_SVID_DIR: ids.dirOf("nexus"),
    SPIKE_NEXUS_TLS_PORT: `${host}:${nexusPort}`,
    SPIKE_NEXUS_BACKEND_STORE: "sqlite",
    SPIKE_NEXUS_DATA_DIR: dataDir,
    SPIKE_NEXUS_KEEPER_PEERS: keeperUrls.join(","),
    SPIKE_NEXUS_SHAMIR_SHARES: String(KEEPERS),
    SPIKE_NEXUS_SHAMIR_THRESHOLD: String(THRESHOLD),
    SPIKE_NEXUS_AUDIT_LOG: join(dir, "ours-audit.log"),
    // The start-up marks (lib/log/startup.ts) are debug lines.
    SPIKE_LOG_LEVEL: "debug",
    ...options.extraNexusEnv,
  };
  const startNexus = (variant?: RunVariant) => {
    const [command, ...rest] = runOf(variant);
    return new BenchProcess("nexus", Deno.execPath(), [command!, ...nexusFlags, ...rest, "nexus"], nexusEnv);
  };
  const pilotEnv = { SPIKE_SVID_DIR: ids.dirOf("pilot-superuser"), SPIKE_NEXUS_API_URL: nexusUrl };
  const probes = probeClients(ids);
  let nexus: BenchProcess;
  try {
    keeperPorts.forEach((port, i) => processes.push(keeper(`keeper-${i + 1}`, port)));
    nexus = startNexus();
    processes.push(nexus);
    for (const [i, url] of keeperUrls.entries()) await waitAnswering(probes.keepers, `${url}/health`, processes[i]!);
    await waitAnswering(probes.nexus, `${nexusUrl}/health`, nexus);
    const bootstrap = new BenchProcess("bootstrap", Deno.execPath(), [...run, "bootstrap"], {
      SPIKE_SVID_DIR: ids.dirOf("bootstrap"),
      SPIKE_NEXUS_API_URL: nexusUrl,
      SPIKE_NEXUS_KEEPER_PEERS: keeperUrls.join(","),
      SPIKE_NEXUS_SHAMIR_SHARES: String(KEEPERS),
      SPIKE_NEXUS_SHAMIR_THRESHOLD: String(THRESHOLD),
    });
    const status = await bootstrap.exited;
    if (!status.success) throw new Error(`bootstrap failed:\n${bootstrap.tail()}`);
    await new NexusClient(nexusUrl, probes.nexus).putSecret(BENCH_SECRET, { username: "bench", password: "s3cr3t" });
  } catch (error) {
    probes.close();
    await stopAll(processes);
    throw error;
  }
  probes.close();
  return {
    kind: "ours",
    nexusUrl,
    nexus: () => nexus,
    async restartNexus(signal: Deno.Signal = "SIGKILL", variant?: RunVariant) {
      await nexus.kill(signal);
      processes.splice(processes.indexOf(nexus), 1);
      nexus = startNexus(variant);
      processes.push(nexus);
      return nexus;
    },
    cli: (args, variant) => ({ executable: Deno.execPath(), args: [...runOf(variant), ...args], env: pilotEnv }),
    startSpareKeeper() {
      const port = freePort();
      return Promise.resolve({ process: keeper("spare-keeper", port), url: `https://${host}:${port}` });
    },
    stop: () => stopAll(processes),
  };
}

/**
 * SPIKE's binaries in `SPIKE_GO_BIN`, or undefined when it is unset; throws
 * when it is set but a binary is missing.
 */
export function spikeGoBinaries(): SpikeGoBinaries | undefined {
  if (!Deno.env.get("SPIKE_GO_BIN")) return undefined;
  const found = findSpikeGoBinaries();
  if ("reason" in found) throw new Error(`${found.reason} (see docs/BENCHMARKS.md for how to build them)`);
  return found.bins;
}

/**
 * Starts SPIKE's Go stack from `SPIKE_GO_BIN`: three Keepers, Nexus on
 * SQLite, `bootstrap -init`, then writes {@linkcode BENCH_SECRET} with
 * SPIKE's own CLI. Each process gets its SVID from its own Workload API
 * socket served by this process. `options.extraNexusEnv` is added to
 * Nexus's environment.
 */
export async function startSpikeGoStack(
  dir: string,
  ids: DevIdentities,
  bins: SpikeGoBinaries,
  options: { extraNexusEnv?: Record<string, string> } = {},
): Promise<BenchStack> {
  const host = "127.0.0.1";
  const apis: WorkloadApiServer[] = [];
  const socketDir = await Deno.makeTempDir({ prefix: "spike-go-api-" });
  let sockets = 0;
  const socketFor = async (name: string) => {
    const server = await startWorkloadApiServer({
      socketPath: join(socketDir, `${sockets++}-${name}.sock`),
      identity: ids.byName.get(name.startsWith("spare") ? "keeper-1" : name)!,
    });
    apis.push(server);
    return server.endpoint;
  };
  const keeperPorts = Array.from({ length: KEEPERS }, () => freePort());
  const keeperUrls = keeperPorts.map((port) => `https://${host}:${port}`);
  const nexusPort = freePort();
  const nexusUrl = `https://${host}:${nexusPort}`;
  const common = {
    SPIKE_NEXUS_BACKEND_STORE: "sqlite",
    SPIKE_NEXUS_SHAMIR_SHARES: String(KEEPERS),
    SPIKE_NEXUS_SHAMIR_THRESHOLD: String(THRESHOLD),
    SPIKE_NEXUS_KEEPER_PEERS: keeperUrls.join(","),
    SPIKE_NEXUS_API_URL: nexusUrl,
    SPIKE_BANNER_ENABLED: "false",
  };
  const processes: BenchProcess[] = [];
  const keeperEnv = async (name: string, port: number) => ({
    ...common,
    SPIFFE_ENDPOINT_SOCKET: await socketFor(name),
    SPIKE_KEEPER_TLS_PORT: `${host}:${port}`,
  });
  const nexusEnv = {
    ...common,
    SPIFFE_ENDPOINT_SOCKET: await socketFor("nexus"),
    SPIKE_NEXUS_TLS_PORT: `${host}:${nexusPort}`,
    SPIKE_NEXUS_DATA_DIR: join(dir, "spike-go-data"),
    ...options.extraNexusEnv,
  };
  await Deno.mkdir(nexusEnv.SPIKE_NEXUS_DATA_DIR, { recursive: true, mode: 0o700 });
  const pilotEnv = { ...common, SPIFFE_ENDPOINT_SOCKET: await socketFor("pilot-superuser") };
  const startNexus = () => new BenchProcess("spike-go nexus", bins.nexus, [], nexusEnv);
  const probes = probeClients(ids);
  let nexus: BenchProcess;
  const closeApis = async () => {
    await Promise.all(apis.map((a) => a.close()));
    await Deno.remove(socketDir, { recursive: true }).catch(() => {});
  };
  try {
    for (const [i, port] of keeperPorts.entries()) {
      processes.push(
        new BenchProcess(`spike-go keeper-${i + 1}`, bins.keeper, [], await keeperEnv(`keeper-${i + 1}`, port)),
      );
    }
    nexus = startNexus();
    processes.push(nexus);
    for (const [i, url] of keeperUrls.entries()) await waitAnswering(probes.keepers, `${url}/`, processes[i]!);
    await waitAnswering(probes.nexus, `${nexusUrl}/`, nexus);
    const bootstrap = new BenchProcess("spike-go bootstrap", bins.bootstrap, ["-init"], {
      ...common,
      SPIFFE_ENDPOINT_SOCKET: await socketFor("bootstrap"),
    });
    const status = await bootstrap.exited;
    if (!status.success) throw new Error(`SPIKE bootstrap failed:\n${bootstrap.tail()}`);
    const put = await new Deno.Command(bins.spike, {
      args: ["secret", "put", BENCH_SECRET, "username=bench", "password=s3cr3t"],
      env: pilotEnv,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!put.success) throw new Error(`SPIKE secret put failed: ${new TextDecoder().decode(put.stderr)}`);
    await waitSecretReadable(new NexusClient(nexusUrl, probes.nexus), BENCH_SECRET, nexus);
  } catch (error) {
    probes.close();
    await stopAll(processes);
    await closeApis();
    throw error;
  }
  probes.close();
  return {
    kind: "spike-go",
    nexusUrl,
    nexus: () => nexus,
    async restartNexus(signal: Deno.Signal = "SIGKILL") {
      await nexus.kill(signal);
      processes.splice(processes.indexOf(nexus), 1);
      nexus = startNexus();
      processes.push(nexus);
      return nexus;
    },
    cli: (args) => ({ executable: bins.spike, args: [...args], env: pilotEnv }),
    async startSpareKeeper() {
      const port = freePort();
      const process = new BenchProcess("spike-go spare-keeper", bins.keeper, [], await keeperEnv("spare-keeper", port));
      return { process, url: `https://${host}:${port}` };
    },
    async stop() {
      await stopAll(processes);
      await closeApis();
    },
  };
}

/** Writes `count` secrets at `pathOf(i)` for i < count, 8 requests at a time, all with the same two values. */
export async function seedSecrets(nexus: NexusClient, count: number, pathOf: (i: number) => string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await nexus.putSecret(pathOf(i), { username: "bench", password: "correct-horse-battery-staple" });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}
