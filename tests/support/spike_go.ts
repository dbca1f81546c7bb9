/**
 * SPIKE's own Go programs beside ours, for the opt-in interop test
 * (`tests/spike_interop_test.ts`): where SPIKE's binaries are
 * (`SPIKE_GO_BIN`, built as docs/BENCHMARKS.md "Building SPIKE's Go
 * binaries" says), a scratch world that starts either side's Nexus, Keepers
 * and Bootstrap and runs either side's CLI, and the small SPIKE SDK client
 * in `tests/spike_interop/`, built once per machine.
 *
 * SPIKE's processes take their identity from a SPIFFE Workload API only;
 * ours read SVID files. Both get SVIDs of the same development CA, so each
 * side's SPIFFE ID checks accept the other's. Our Workload API server does
 * no attestation, so every SPIKE process gets a socket of its own.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type DevIdentities, mintDevIdentities } from "../../lib/dev/identities.ts";
import type { X509Identity } from "../../lib/spiffe/identity.ts";
import { loadOrCreateDevCa, writeSvidFiles } from "../../lib/spiffe/dev_ca.ts";
import { startWorkloadApiServer, type WorkloadApiServer } from "../../lib/spiffe/workload_api_server.ts";
import { toolCacheDir } from "./cache_dir.ts";
import { exists } from "./files.ts";
import { type CommandResult, freePort, runExecutable, runSpike, SpikeProcess } from "./process.ts";

/** The trust domain of every identity in an interop world (SPIKE's default trust root). */
export const TRUST_DOMAIN = "spike.ist";

/** Paths of SPIKE's four binaries. */
export interface SpikeGoBinaries {
  readonly nexus: string;
  readonly keeper: string;
  readonly bootstrap: string;
  /** SPIKE's pilot CLI. */
  readonly spike: string;
}

/**
 * SPIKE's binaries from `SPIKE_GO_BIN`, or why they cannot be used (unset,
 * or a binary missing), for a test's `ignore` and its message.
 */
export function findSpikeGoBinaries(): { bins: SpikeGoBinaries } | { reason: string } {
  const dir = Deno.env.get("SPIKE_GO_BIN");
  if (!dir) return { reason: "SPIKE_GO_BIN is not set" };
  const bins: SpikeGoBinaries = {
    nexus: join(dir, "nexus"),
    keeper: join(dir, "keeper"),
    bootstrap: join(dir, "bootstrap"),
    spike: join(dir, "spike"),
  };
  for (const [name, path] of Object.entries(bins)) {
    try {
      if (!Deno.statSync(path).isFile) return { reason: `SPIKE_GO_BIN=${dir}: '${name}' is not a file` };
    } catch {
      return { reason: `SPIKE_GO_BIN=${dir} has no '${name}' binary` };
    }
  }
  return { bins };
}

/** The Go module of the SDK client. */
const SDK_CLIENT_MODULE = new URL("../spike_interop/", import.meta.url).pathname;

/**
 * Builds `tests/spike_interop` (a tiny program on SPIKE's Go SDK, pinned by
 * its go.mod) into the tool cache, once per content of its sources;
 * resolves with the binary's path, or why it could not be built (no Go, or
 * the Go module proxy cannot serve the SDK), for the caller to skip.
 */
export async function buildSdkClient(): Promise<{ path: string } | { reason: string }> {
  const hash = createHash("sha256");
  for (const name of ["go.mod", "go.sum", "main.go"]) hash.update(await Deno.readFile(join(SDK_CLIENT_MODULE, name)));
  const dir = toolCacheDir("spike-sdk-client", hash.digest("hex").slice(0, 16));
  const path = join(dir, "sdk_client");
  if (await exists(path)) return { path };
  let result: CommandResult;
  try {
    result = await runExecutable("go", ["build", "-o", path, "."], {
      cwd: SDK_CLIENT_MODULE,
      env: { ...goEnv(), GOFLAGS: "-mod=readonly -buildvcs=false" },
      timeoutMs: 300_000,
    });
  } catch (error) {
    return { reason: `go could not be run: ${(error as Error).message}` };
  }
  if (result.code !== 0) return { reason: `go build of tests/spike_interop failed: ${result.stderr.trim()}` };
  return { path };

  function goEnv(): Record<string, string> {
    const out: Record<string, string> = {};
    for (
      const name of ["GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GONOSUMDB", "GOSUMDB", "HTTPS_PROXY", "https_proxy"]
    ) {
      const value = Deno.env.get(name);
      if (value !== undefined) out[name] = value;
    }
    return out;
  }
}

/** Either side's programs, started and stopped in one scratch directory. */
export class InteropWorld {
  readonly #processes = new Set<SpikeProcess>();
  readonly #apis = new Map<string, Promise<WorkloadApiServer>>();
  readonly #extra = new Map<string, X509Identity>();

  private constructor(
    /** Scratch directory (removed by {@linkcode InteropWorld.close}). */
    readonly dir: string,
    /** SVIDs of nexus, bootstrap, keeper-<i>, pilot-superuser, pilot-recover, pilot-restore. */
    readonly ids: DevIdentities,
    /** SPIKE's binaries. */
    readonly bins: SpikeGoBinaries,
  ) {}

  /** A fresh world with `keepers` Keeper identities. */
  static async create(bins: SpikeGoBinaries, keepers: number): Promise<InteropWorld> {
    const dir = await Deno.makeTempDir({ prefix: "spike_interop_" });
    const ids = await mintDevIdentities(dir, TRUST_DOMAIN, keepers);
    return new InteropWorld(dir, ids, bins);
  }

  /**
   * Mints a workload identity `spiffe://spike.ist/<idPath>` under `name`:
   * served by {@linkcode socketFor} to SPIKE's programs, and written to
   * `ids.dirOf(name)` for ours ({@linkcode runOurs}, the SDK's `svidDir`).
   */
  async mintWorkload(name: string, idPath: string): Promise<void> {
    const ca = await loadOrCreateDevCa(join(this.dir, "ca"), { trustDomain: TRUST_DOMAIN });
    const identity = await ca.issue(`spiffe://${TRUST_DOMAIN}/${idPath}`);
    await writeSvidFiles(this.ids.dirOf(name), identity);
    this.#extra.set(name, identity);
  }

  /** The Workload API endpoint serving `name`'s SVID to one SPIKE process (made on first use). */
  async socketFor(name: string): Promise<string> {
    let server = this.#apis.get(name);
    if (!server) {
      const identity = this.#extra.get(name) ?? this.ids.byName.get(name);
      if (!identity) throw new Error(`no identity named ${name}`);
      // Kept as a promise so that callers asking at the same time share one socket.
      server = startWorkloadApiServer({ socketPath: join(this.dir, `${name}.sock`), identity });
      this.#apis.set(name, server);
    }
    return (await server).endpoint;
  }

  /** Starts one of our roles (`spike <args>`) with `name`'s SVID directory. */
  startOurs(name: string, args: readonly string[], env: Record<string, string>): SpikeProcess {
    return this.#track(new SpikeProcess(args, { env: { SPIKE_SVID_DIR: this.ids.dirOf(name), ...env } }));
  }

  /** Starts SPIKE's `binary` with `name`'s identity on a socket of its own. */
  async startGo(
    binary: keyof SpikeGoBinaries,
    name: string,
    args: readonly string[],
    env: Record<string, string>,
  ): Promise<SpikeProcess> {
    const socket = await this.socketFor(name);
    return this.#track(
      new SpikeProcess(args, {
        executable: this.bins[binary],
        env: { SPIFFE_ENDPOINT_SOCKET: socket, SPIKE_BANNER_ENABLED: "false", ...env },
      }),
    );
  }

  /** Runs our `spike <args>` once as `name`. */
  runOurs(
    name: string,
    args: readonly string[],
    env: Record<string, string>,
    stdin?: string | Uint8Array,
  ): Promise<CommandResult> {
    return runSpike(args, {
      env: { SPIKE_SVID_DIR: this.ids.dirOf(name), ...env },
      ...(stdin === undefined ? {} : { stdin }),
    });
  }

  /** Runs SPIKE's `binary args` once as `name` (by default SPIKE's pilot CLI). */
  async runGo(
    name: string,
    args: readonly string[],
    env: Record<string, string>,
    options: { stdin?: string | Uint8Array; binary?: keyof SpikeGoBinaries | string } = {},
  ): Promise<CommandResult> {
    const socket = await this.socketFor(name);
    const binary = options.binary ?? "spike";
    const executable = binary in this.bins ? this.bins[binary as keyof SpikeGoBinaries] : binary;
    return await runExecutable(executable, args, {
      env: { SPIFFE_ENDPOINT_SOCKET: socket, SPIKE_BANNER_ENABLED: "false", ...env },
      ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    });
  }

  /** Stops `process` (SIGTERM, or `signal`; SIGKILL after 5 s) and forgets it. */
  async stop(process: SpikeProcess, signal: Deno.Signal = "SIGTERM"): Promise<void> {
    const timer = setTimeout(() => process.stop("SIGKILL"), 5000);
    await process.stop(signal);
    clearTimeout(timer);
    this.#processes.delete(process);
  }

  /** Stops every process, closes every socket and removes the directory. */
  async close(): Promise<void> {
    await Promise.all([...this.#processes].map((p) => this.stop(p)));
    await Promise.all([...this.#apis.values()].map(async (api) => (await api.catch(() => undefined))?.close()));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  #track(process: SpikeProcess): SpikeProcess {
    this.#processes.add(process);
    return process;
  }
}

/** Waits until something accepts TCP connections on 127.0.0.1:`port`; fails early if `process` exits. */
export async function waitListening(port: number, process: SpikeProcess, timeoutMs = 30_000): Promise<void> {
  let exited = false;
  process.exited.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (exited) throw new Error(`process exited before listening on ${port}:\n${process.output}`);
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`nothing listens on ${port} in time:\n${process.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** `https://127.0.0.1:<port>` for a fresh port, and the port. */
export function loopbackUrl(): { port: number; url: string } {
  const port = freePort();
  return { port, url: `https://127.0.0.1:${port}` };
}

/**
 * The shape of a JSON value for comparing two servers' answers: times (RFC
 * 3339 strings) become `"<time>"`, other strings `"<string>"`; numbers,
 * booleans, null and keys stay as they are.
 */
export function jsonShape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(jsonShape);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value).sort().map((key) => [key, jsonShape((value as Record<string, unknown>)[key])]),
    );
  }
  if (typeof value === "string") {
    return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value) ? "<time>" : "<string>";
  }
  return value;
}
