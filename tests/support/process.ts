/**
 * Runs the real `spike` command as child processes for integration tests:
 * one-shot commands (CLI) and long-running roles (nexus, keeper, dev), with
 * their output captured and helpers to wait for a log line or a port.
 *
 * @module
 */
import { forEachLine } from "../../lib/dev/lines.ts";
import { getPlainStatus } from "../../lib/dev/health.ts";

export { freePort } from "./ports.ts";

/** Path of the `spike` entry point. */
export const SPIKE_MAIN = new URL("../../cmd/spike.ts", import.meta.url).pathname;

/** Deno flags every test child gets (tests are not the place for least privilege). */
export const TEST_DENO_FLAGS = ["--allow-all", "--v8-flags=--enable-experimental-regexp-engine", "--quiet"];

/** Output of a finished command. */
export interface CommandResult {
  /** Exit code. */
  readonly code: number;
  /** Standard output as text. */
  readonly stdout: string;
  /** Standard output as bytes. */
  readonly stdoutBytes: Uint8Array;
  /** Standard error as text. */
  readonly stderr: string;
}

/** Environment for children: the test's own PATH/HOME plus `env`. */
export function childEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "TMPDIR", "DENO_DIR", "NO_COLOR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  // Pin Deno's cache: a test that gives the child another HOME must not
  // leave it with an empty cache (and no network to fill it).
  base.DENO_DIR ??= defaultDenoDir();
  return { ...base, NO_COLOR: "1", ...env };
}

/**
 * The variables that let Deno reach the npm registry from this machine
 * (extra CA certificates, proxies), for children that start with an empty
 * Deno cache and must download.
 */
export function networkEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (
    const name of [
      "NODE_EXTRA_CA_CERTS",
      "DENO_CERT",
      "DENO_TLS_CA_STORE",
      "HTTPS_PROXY",
      "HTTP_PROXY",
      "NO_PROXY",
      "https_proxy",
      "http_proxy",
      "no_proxy",
      "NPM_CONFIG_REGISTRY",
    ]
  ) {
    const value = Deno.env.get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Where Deno keeps its cache when DENO_DIR is unset (Linux and macOS rules). */
function defaultDenoDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/deno`;
  const home = Deno.env.get("HOME") ?? "";
  return Deno.build.os === "darwin" ? `${home}/Library/Caches/deno` : `${home}/.cache/deno`;
}

/** How {@linkcode runExecutable} and {@linkcode runSpike} run a child. */
export interface RunOptions {
  /** Added to the test's PATH/HOME (nothing else is inherited). */
  env?: Record<string, string>;
  /** Written to the child's stdin, which is then closed (absent: empty stdin). */
  stdin?: string | Uint8Array;
  /** Killed after this long (default 60 s). */
  timeoutMs?: number;
  /** Working directory. */
  cwd?: string;
  /** Primary group to run as (the uid stays the test's): how SPIRE tests pick a workload identity. */
  gid?: number;
}

/**
 * Runs `spike <args>` to completion (killed after `timeoutMs`, default 60 s)
 * and returns its exit code and output.
 */
export function runSpike(
  args: readonly string[],
  options: Omit<RunOptions, "cwd"> & { denoFlags?: string[] } = {},
): Promise<CommandResult> {
  const { denoFlags, ...rest } = options;
  return runExecutable(Deno.execPath(), ["run", ...(denoFlags ?? TEST_DENO_FLAGS), SPIKE_MAIN, ...args], rest);
}

/**
 * Runs `executable args` (in `cwd`) to completion with exactly the test's
 * PATH/HOME plus `env` (killed after `timeoutMs`, default 60 s); `stdin` is
 * written and closed, or stdin is empty.
 */
export async function runExecutable(
  executable: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const child = new Deno.Command(executable, {
    args: [...args],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: childEnv(options.env ?? {}),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.timeoutMs ?? 60_000);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin);
      await writer.close();
    }
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stdoutBytes: output.stdout,
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A long-running `spike` child. */
export class SpikeProcess {
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiters = new Set<() => void>();
  /** Resolves with the exit status once the process ends. */
  readonly exited: Promise<Deno.CommandStatus>;

  /**
   * Starts `spike <args>` with `env`; stdout and stderr are both captured.
   * `executable` runs that file with `args` instead of `deno run … cmd/spike.ts`
   * (an installed `spike`).
   */
  constructor(
    args: readonly string[],
    options: { env?: Record<string, string>; denoFlags?: string[]; gid?: number; executable?: string } = {},
  ) {
    this.#child = new Deno.Command(options.executable ?? Deno.execPath(), {
      args: options.executable ? [...args] : ["run", ...(options.denoFlags ?? TEST_DENO_FLAGS), SPIKE_MAIN, ...args],
      env: childEnv(options.env ?? {}),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pumps = [this.#pump(this.#child.stdout), this.#pump(this.#child.stderr)];
    this.exited = Promise.all(pumps).then(() => this.#child.status);
  }

  /** The child's process ID. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Every output line so far (stdout and stderr interleaved). */
  get output(): string {
    return this.#lines.join("\n");
  }

  /** Waits until an output line matches `pattern`; throws with the output after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.exited.then(() => exited = true);
    while (true) {
      const line = this.#lines.find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (exited) throw new Error(`process exited before ${pattern} appeared:\n${this.output}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}:\n${this.output}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch { /* already exited */ }
    return await this.exited;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    await forEachLine(stream, (line) => {
      this.#lines.push(line);
      for (const wake of this.#waiters) wake();
      this.#waiters.clear();
    });
    for (const wake of this.#waiters) wake();
  }
}

/**
 * Polls `check` every `intervalMs` until it holds (a check that throws
 * counts as not yet); throws naming `what` after `timeoutMs`.
 */
export async function eventually(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Polls `GET https://127.0.0.1:<port>/ready` (no client cert) until 200 or timeout. */
export async function waitForReady(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const status = await getPlainStatus(port, "/ready").catch((e) => (last = String(e), 0));
    if (status === 200) return;
    last = `status ${status}`;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`port ${port} never became ready (${last})`);
}
