/**
 * Pays the process's one-time cost of secure randomness on another core
 * while the main thread is still loading modules.
 *
 * Deno's TLS and WebCrypto draw randomness from AWS-LC, which seeds its
 * generator once per process from CPU jitter entropy: the first TLS
 * handshake (or the first key generation) of a process spends ~25 ms of
 * CPU there, on the thread that asks first (measured on the 2-core
 * development VM; later handshakes cost 1–5 ms). Deno generates ECDSA keys
 * on its blocking thread pool, so asking for one throwaway P-256 key as
 * the process starts moves that seeding off the main thread: it runs
 * beside the ~30–60 ms of module loading that comes before a role's first
 * connection instead of in front of the handshake. The key is
 * non-extractable and dropped at once.
 *
 * Only commands that will open a TLS connection ask: `--help`, `version`,
 * `completions` and offline `audit` checks exit without one, and an
 * exit never waits for the warm-up (the entry point ends with
 * `Deno.exit`).
 *
 * The entry point starts it once the command tree is loaded, before the
 * role's own modules: starting it earlier (the tree loaded by dynamic
 * import after it) made the tree load ~8 ms slower on 2 cores and the
 * whole start no faster (docs/BENCHMARKS.md, "Start-up").
 *
 * @module
 */

/** Subcommands that never open a TLS connection. */
const OFFLINE_COMMANDS: ReadonlySet<string> = new Set(["version", "completions", "audit", "help"]);

/** Whether the command line `args` (without the program name) will make a TLS connection worth warming up for. */
export function wantsEntropyWarmup(args: readonly string[]): boolean {
  if (args.some((arg) => arg === "-h" || arg === "--help" || arg === "--version")) return false;
  const command = args.find((arg) => !arg.startsWith("-"));
  return command !== undefined && !OFFLINE_COMMANDS.has(command);
}

/** The part of `SubtleCrypto` the warm-up uses (injected in tests). */
export type KeyGenerator = Pick<SubtleCrypto, "generateKey">;

/**
 * Starts the warm-up when `args` need it and returns at once; resolves the
 * returned promise when the seeding is done (callers need not wait). A
 * failure is ignored: the first real handshake then pays the cost itself.
 */
export function startEntropyWarmup(
  args: readonly string[],
  subtle: KeyGenerator = crypto.subtle,
): Promise<void> | undefined {
  if (!wantsEntropyWarmup(args)) return undefined;
  let pending: Promise<unknown>;
  try {
    pending = subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  } catch {
    return undefined;
  }
  return pending.then(() => undefined, () => undefined);
}
