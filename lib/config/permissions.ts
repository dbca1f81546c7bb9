/**
 * The least Deno permissions each role needs, as `deno run` flags, and the
 * memory settings of the server roles. `spike dev` starts every child with
 * these; the systemd units, the Helm chart and the container image carry
 * the same (tests check the units against this file).
 *
 * @module
 */

/** Roles that run as their own process. */
export type ProcessRole = "nexus" | "keeper" | "bootstrap";

/** What a role touches. */
export interface RoleResources {
  /** The SVID directory it reads (spiffe-helper layout), when it takes its identity from files. */
  readonly svidDir?: string;
  /**
   * Path of the SPIFFE Workload API socket (`SPIFFE_ENDPOINT_SOCKET` without
   * `unix://`), when it takes its identity from SPIRE. Deno wants read, write
   * and `unix:` net access to connect to a Unix socket.
   */
  readonly workloadApiSocket?: string;
  /** `host:port` it listens on (nexus, keeper). */
  readonly listen?: string;
  /** `host:port` pairs it connects to (Keepers, Nexus). */
  readonly connect?: readonly string[];
  /** Directory it reads and writes (Nexus data, SQLite backends). */
  readonly dataDir?: string;
  /** Further files it reads (Nexus: `SPIKE_NEXUS_POSTGRES_PASSWORD_FILE`). */
  readonly readFiles?: readonly string[];
  /** Further files it writes (Nexus: `SPIKE_NEXUS_AUDIT_LOG` when it names a file). */
  readonly writeFiles?: readonly string[];
  /**
   * Under systemd: the manager's socket (`NOTIFY_SOCKET`) and the path the
   * sending end binds to (`$RUNTIME_DIRECTORY/notify.sock`). Sending needs
   * Deno's `--unstable-net` (Unix datagram sockets).
   */
  readonly notify?: { readonly socket: string; readonly bind: string };
  /**
   * Run V8 without its JIT (`--jitless`): no memory is ever writable and
   * executable, so the process runs under systemd's
   * `MemoryDenyWriteExecute=yes`. Worth it for Keepers and bootstrap, which
   * compute next to nothing.
   */
  readonly jitless?: boolean;
}

/** Deno flag for Unix datagram sockets (systemd notifications). */
export const UNSTABLE_NET_FLAG = "--unstable-net";

/** V8 option Nexus needs for linear-time policy regexes. */
const LINEAR_REGEX = "--enable-experimental-regexp-engine";

/** V8 flag Nexus needs for linear-time policy regexes. */
export const NEXUS_V8_FLAGS = `--v8-flags=${LINEAR_REGEX}`;

/** V8 flag that turns its JIT off. */
const JITLESS = "--jitless";

/**
 * V8 options of the server roles (Nexus, Keeper), one comma-separated list:
 * - the young generation stops growing at 2 MiB, so request garbage
 *   (request bodies included) is collected young instead of being promoted
 *   and kept;
 * - V8's memory reducer starts 1 s after the heap stops growing (not 30 s
 *   after start, then 8 s), so buffers a burst went through are released
 *   shortly after it instead of whenever the next GC happens.
 *
 * With {@linkcode SERVER_MEMORY_ENV}, Nexus's resident size 10 s after 300
 * unauthenticated 1 MiB POSTs settled ~30 MiB above a fresh process
 * (default launch: ~115), at no CPU cost we could measure on GET or PUT
 * (docs/BENCHMARKS.md, "Memory after unauthenticated floods";
 * bench/flood_memory_bench.ts).
 */
export const SERVER_MEMORY_V8 =
  "--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000";

/**
 * Environment of the server roles: glibc serves blocks of 16 KiB and more
 * with their own mappings and unmaps them when freed, so buffers a flood
 * of large bodies went through go back to the system instead of staying in
 * a fragmented heap. It must be set when the process starts.
 */
export const SERVER_MEMORY_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_MMAP_THRESHOLD_: "16384",
});

/** The environment variables `role` runs with besides its configuration ({@linkcode SERVER_MEMORY_ENV} for servers). */
export function roleEnvironment(role: ProcessRole): Readonly<Record<string, string>> {
  return role === "bootstrap" ? {} : SERVER_MEMORY_ENV;
}

/**
 * `deno run` permission flags for `role`. Nothing is granted that the role
 * does not use: a Keeper cannot write files, Bootstrap cannot listen, none
 * can spawn processes.
 */
export function rolePermissionFlags(role: ProcessRole, resources: RoleResources): string[] {
  const { svidDir, workloadApiSocket: api, notify } = resources;
  const dataDir = role === "nexus" ? resources.dataDir : undefined;
  const read = [
    ...(svidDir ? [svidDir] : []),
    ...(api ? [api] : []),
    ...(resources.readFiles ?? []),
    ...(dataDir ? [dataDir] : []),
    ...(notify ? [notify.bind] : []),
  ];
  const write = [
    ...(api ? [api] : []),
    ...(resources.writeFiles ?? []),
    ...(dataDir ? [dataDir] : []),
    ...(notify ? [notify.bind, notify.socket] : []),
  ];
  const net = [
    ...(resources.listen ? [resources.listen] : []),
    ...(resources.connect ?? []),
    ...(api ? [`unix:${api}`] : []),
    ...(notify ? [`unix:${notify.bind}`, `unix:${notify.socket}`] : []),
  ];
  const flags = ["--no-prompt", "--allow-env"];
  if (read.length > 0) flags.push(`--allow-read=${read.join(",")}`);
  if (write.length > 0) flags.push(`--allow-write=${write.join(",")}`);
  if (net.length > 0) flags.push(`--allow-net=${net.join(",")}`);
  if (notify) flags.push(UNSTABLE_NET_FLAG);
  const v8 = [
    ...(role === "nexus" ? [LINEAR_REGEX] : []),
    ...(role === "bootstrap" ? [] : [SERVER_MEMORY_V8]),
    ...(resources.jitless ? [JITLESS] : []),
  ];
  if (v8.length > 0) flags.push(`--v8-flags=${v8.join(",")}`);
  return flags;
}

/** Ports implied by a URL scheme that names none. */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { "https:": "443", "postgres:": "5432", "postgresql:": "5432" };

/** `host:port` of an https or postgres URL, as `--allow-net` wants it. */
export function netTarget(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || DEFAULT_PORTS[u.protocol] || "443"}`;
}
