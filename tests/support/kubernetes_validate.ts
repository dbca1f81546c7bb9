/**
 * `kubernetes-validate` (PyPI), which checks Kubernetes objects against the
 * API's JSON schemas for a given Kubernetes release: installed once per
 * machine into a virtual environment in `~/.cache/spike/`.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "./files.ts";
import { toolCacheDir } from "./cache_dir.ts";

/** The kubernetes-validate release pinned; it carries schemas for Kubernetes 1.25 to 1.37. */
export const KUBERNETES_VALIDATE_VERSION = "1.37.0";

async function run(command: string, args: string[]): Promise<Deno.CommandOutput> {
  try {
    return await new Deno.Command(command, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`${command} is needed for the manifest checks (apt-get install python3 python3-venv)`);
    }
    throw error;
  }
}

/** Path of the `kubernetes-validate` program, installing it first when it is missing. */
export async function ensureKubernetesValidate(): Promise<string> {
  const dir = toolCacheDir("kubernetes-validate", KUBERNETES_VALIDATE_VERSION);
  const program = join(dir, "bin", "kubernetes-validate");
  if (await exists(program)) return program;
  console.error(`installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} into ${dir} (first run only)`);
  const venv = await run("python3", ["-m", "venv", dir]);
  if (!venv.success) throw new Error(`python3 -m venv failed: ${new TextDecoder().decode(venv.stderr)}`);
  const pip = await run(join(dir, "bin", "pip"), [
    "install",
    "--quiet",
    `kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}`,
  ]);
  if (!pip.success) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`pip install kubernetes-validate failed: ${new TextDecoder().decode(pip.stderr)}`);
  }
  return program;
}

/** Validates the objects in `files` against Kubernetes `version`'s schemas, rejecting unknown fields. */
export async function kubernetesValidate(
  files: readonly string[],
  version: string,
): Promise<{ code: number; output: string }> {
  const out = await run(await ensureKubernetesValidate(), ["--strict", "--kubernetes-version", version, ...files]);
  const decoder = new TextDecoder();
  return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

if (import.meta.main) {
  // `.ci/run` installs it as a step of its own, before the tests.
  console.log(await ensureKubernetesValidate());
}
