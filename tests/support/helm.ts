/**
 * Helm for the chart checks: built once per machine from the Go module proxy
 * (`go install helm.sh/helm/v3/cmd/helm@v<version>`, Go being on the
 * machine) into `~/.cache/spike/helm-<version>/`, like SPIRE. `SPIKE_TEST_HELM`
 * names a helm binary to use instead.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "./files.ts";
import { toolCacheDir } from "./cache_dir.ts";

/** The Helm release the checks pin. */
export const HELM_VERSION = "3.22.0";

/** Path of the helm binary, building it first when it is missing (a few minutes, once). */
export async function ensureHelm(): Promise<string> {
  const override = Deno.env.get("SPIKE_TEST_HELM");
  if (override) return override;
  const dir = toolCacheDir("helm", HELM_VERSION);
  const binary = join(dir, "helm");
  if (await exists(binary)) return binary;
  console.error(`building Helm v${HELM_VERSION} into ${dir} (first run only; a few minutes)`);
  for (let attempt = 1;; attempt++) {
    let status: Deno.CommandStatus;
    try {
      status = await new Deno.Command("go", {
        args: [
          "install",
          // What Helm's own Makefile stamps in, so `helm version` names the release.
          `-ldflags=-X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}`,
          `helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}`,
        ],
        env: { GOBIN: dir, GOFLAGS: "-buildvcs=false" },
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn().status;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Error("Go is needed to build Helm for the chart checks (or set SPIKE_TEST_HELM)");
      }
      throw error;
    }
    if (status.success) return binary;
    if (attempt === 3) throw new Error(`building Helm v${HELM_VERSION} failed (go install exited ${status.code})`);
    console.error(`go install failed (exit ${status.code}); trying again (${attempt + 1} of 3)`);
  }
}

/** Runs helm; resolves with its exit code, stdout and stderr. */
export async function helm(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(await ensureHelm(), {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    // Helm keeps caches and plugin config under HOME; the chart needs none of them.
    env: { HELM_CACHE_HOME: "/tmp/spike-helm-cache", HELM_CONFIG_HOME: "/tmp/spike-helm-config" },
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

if (import.meta.main) {
  // `.ci/run` builds Helm as a step of its own, before the tests.
  console.log(await ensureHelm());
}
