/**
 * Builds the Go load generator (`bench/loadgen/`) once per source version
 * into a cache directory, and says where the binary is. It uses only Go's
 * standard library, so the build needs no network (`GOFLAGS=-mod=mod`, no
 * module downloads).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SOURCE_DIR = fileURLToPath(new URL("./loadgen", import.meta.url));
const SOURCES = ["main.go", "go.mod"];

/** Where built load generators are kept: `$XDG_CACHE_HOME/spike/loadgen` or `~/.cache/spike/loadgen`. */
export function loadgenCacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") || join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "spike", "loadgen");
}

/**
 * The path of the load generator built from the current sources, building
 * it first when this version is not in the cache.
 *
 * @throws when `go` is missing or the build fails (with go's output).
 */
export async function ensureLoadgen(): Promise<string> {
  const hash = createHash("sha256");
  for (const file of SOURCES) hash.update(await Deno.readFile(join(SOURCE_DIR, file)));
  const dir = join(loadgenCacheDir(), hash.digest("hex").slice(0, 16));
  const binary = join(dir, "loadgen");
  try {
    if ((await Deno.stat(binary)).isFile) return binary;
  } catch {
    // Not built yet.
  }
  await Deno.mkdir(dir, { recursive: true });
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("go", {
      args: ["build", "-trimpath", "-o", binary, "."],
      cwd: SOURCE_DIR,
      env: { GOFLAGS: "-mod=mod", CGO_ENABLED: "0", GOPROXY: "off" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(`cannot run 'go' to build bench/loadgen (is Go installed?): ${(error as Error).message}`);
  }
  if (!output.success) {
    throw new Error(`go build of bench/loadgen failed:\n${new TextDecoder().decode(output.stderr)}`);
  }
  return binary;
}

/** What one load generator run reports (see bench/loadgen/main.go). */
export interface LoadgenResult {
  readonly requests: number;
  readonly errors: number;
  readonly first_error?: string;
  readonly seconds: number;
  readonly rps: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly server_cpu_ms?: number;
  readonly server_cpu_us_per_request?: number;
  readonly load_average?: string;
  /** Set when every request opened its own connection (`-new-conn`). */
  readonly new_connections?: boolean;
  /** Handshakes that resumed a TLS session (`-resume`). */
  readonly resumed?: number;
}

/** Runs the load generator with `args` and parses its JSON line. */
export async function runLoadgen(binary: string, args: readonly string[]): Promise<LoadgenResult> {
  const output = await new Deno.Command(binary, { args: [...args], stdout: "piped", stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    throw new Error(`loadgen ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  return JSON.parse(stdout) as LoadgenResult;
}

/**
 * Load generator arguments for `secret get` on `nexusUrl`: request `i` reads
 * `pathTemplate` with `{i}` replaced by `i` modulo `modulo`.
 */
export function secretGetArgs(nexusUrl: string, modulo: number, pathTemplate = "bench/s-{i}"): string[] {
  return [
    "-url",
    `${nexusUrl}/v1/store/secrets?action=get`,
    "-method",
    "POST",
    "-body",
    JSON.stringify({ path: pathTemplate }),
    "-modulo",
    String(modulo),
  ];
}

/**
 * Load generator arguments for `secret put` on `nexusUrl`: request `i`
 * writes the benchmarks' two values at `pathTemplate` with `{i}` replaced
 * by `i` (a new path per request when the template holds `{i}`).
 */
export function secretPutArgs(nexusUrl: string, pathTemplate: string): string[] {
  return [
    "-url",
    `${nexusUrl}/v1/store/secrets`,
    "-method",
    "POST",
    "-body",
    JSON.stringify({ path: pathTemplate, values: { username: "bench", password: "correct-horse-battery-staple" } }),
  ];
}
