/**
 * The npm side of the tests: `npm ci` and `npm run build` in a package
 * directory, each skipped while its inputs are unchanged (a stamp file holds
 * their hash), each bounded in time; and Node child processes.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { forEachLine } from "../../lib/dev/lines.ts";
import { exists } from "./files.ts";

/** The repository root. */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname;
/** The SDK package. */
export const SDK_PACKAGE_DIR = join(REPO_ROOT, "packages/sdk");

const INSTALL_STAMP = "node_modules/.spike-install-stamp";
const BUILD_STAMP = "dist/.spike-build-stamp";
const INSTALL_TIMEOUT_MS = 5 * 60_000;
const BUILD_TIMEOUT_MS = 3 * 60_000;

/** Output of a finished command. */
export interface RunResult {
  /** Exit code (`null` when killed at its deadline). */
  readonly code: number | null;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/** Runs `command args` in `cwd` to completion, killed after `timeoutMs`; the environment is the test's plus `env`. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs: number },
): Promise<RunResult> {
  const child = new Deno.Command(command, {
    args: [...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.timeoutMs);
  const output = await child.output();
  clearTimeout(timer);
  const decoder = new TextDecoder();
  return {
    code: killed ? null : output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs a command and throws with its output unless it exits 0. */
async function mustRun(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<void> {
  const result = await run(command, args, { cwd, timeoutMs });
  if (result.code !== 0) {
    const how = result.code === null ? `timed out after ${timeoutMs} ms` : `exited ${result.code}`;
    throw new Error(`${command} ${args.join(" ")} in ${cwd} ${how}\n${result.stdout}\n${result.stderr}`);
  }
}

/** SHA-256 over the names and contents of `files`, in the order given. */
async function hashFiles(files: readonly string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(file).update("\0").update(await Deno.readFile(file)).update("\0");
  }
  return hash.digest("hex");
}

/** Runs `action` unless `stampFile` holds `hash`, then records `hash` there. */
async function unlessStamped(stampFile: string, hash: string, action: () => Promise<void>): Promise<boolean> {
  const stamped = await Deno.readTextFile(stampFile).catch(() => "");
  if (stamped === hash) return false;
  await action();
  await Deno.writeTextFile(stampFile, hash);
  return true;
}

/** `npm ci` in `dir` unless `package.json` and `package-lock.json` are what the last install used. */
export async function ensureNpmInstall(dir: string): Promise<boolean> {
  const hash = await hashFiles([join(dir, "package.json"), join(dir, "package-lock.json")]);
  if (!await exists(join(dir, "node_modules"))) await Deno.remove(join(dir, INSTALL_STAMP)).catch(() => {});
  return await unlessStamped(
    join(dir, INSTALL_STAMP),
    hash,
    () => mustRun("npm", ["ci", "--no-audit", "--no-fund"], dir, INSTALL_TIMEOUT_MS),
  );
}

/** Every non-test TypeScript file under `lib/`, sorted: what the SDK build may read. */
async function libSources(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) out.push(path);
    }
  };
  await walk(join(REPO_ROOT, "lib"));
  return out.sort();
}

/**
 * Installs and builds the SDK package (`npm ci && npm run build` in
 * `packages/sdk`), skipping each step while its inputs are unchanged.
 * Resolves with what was done, for the test's log.
 */
export async function ensureSdkPackageBuilt(): Promise<{ installed: boolean; built: boolean }> {
  const dir = SDK_PACKAGE_DIR;
  const installed = await ensureNpmInstall(dir);
  const inputs = [
    join(dir, "package.json"),
    join(dir, "package-lock.json"),
    join(dir, "tsconfig.json"),
    ...await libSources(),
  ];
  const hash = await hashFiles(inputs);
  if (installed) await Deno.remove(join(dir, BUILD_STAMP)).catch(() => {});
  const built = await unlessStamped(
    join(dir, BUILD_STAMP),
    hash,
    () => mustRun("npm", ["run", "build"], dir, BUILD_TIMEOUT_MS),
  );
  return { installed, built };
}

/** A long-running child (a Node service) whose output lines are collected. */
export class ServiceProcess {
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  /** Resolves with the exit status once the process has ended and its output is read. */
  readonly exited: Promise<Deno.CommandStatus>;

  /** Starts `command args` in `cwd` with the test's environment plus `env`. */
  constructor(command: string, args: readonly string[], options: { cwd: string; env: Record<string, string> }) {
    this.#child = new Deno.Command(command, {
      args: [...args],
      cwd: options.cwd,
      env: { NO_COLOR: "1", ...options.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = (line: string) => void this.#lines.push(line);
    const pumps = [forEachLine(this.#child.stdout, collect), forEachLine(this.#child.stderr, collect)];
    this.exited = Promise.all(pumps).then(() => this.#child.status);
  }

  /** Every output line so far (stdout and stderr interleaved). */
  get output(): string {
    return this.#lines.join("\n");
  }

  /** Waits until an output line matches `pattern`; throws with the output on exit or after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => exited = true);
    while (true) {
      const line = this.#lines.find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (exited) throw new Error(`process exited before ${pattern} appeared:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs`). */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 10_000): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
