/**
 * The SPIRE server and agent the suite runs against: built once from the
 * module pinned in `tests/spire/go.mod` (with `go install`, Go being on the
 * machine) into `~/.cache/spike/spire-<version>/`, and reused afterwards.
 * `SPIKE_TEST_SPIRE_BIN` names a directory holding `spire-server` and
 * `spire-agent` to use instead.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "./files.ts";

/** The SPIRE release `tests/spire/go.mod` pins. */
export const SPIRE_VERSION = "1.13.3";

/** The tool module that pins SPIRE. */
const TOOL_MODULE = new URL("../spire/", import.meta.url).pathname;

/** Where the built binaries are kept between runs. */
function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "spike", `spire-${SPIRE_VERSION}`);
}

/**
 * The directory holding `spire-server` and `spire-agent`, building them
 * first when they are missing (a few minutes, once per machine).
 */
export async function ensureSpireBinaries(): Promise<string> {
  const override = Deno.env.get("SPIKE_TEST_SPIRE_BIN");
  if (override) return override;
  const dir = cacheDir();
  if (await exists(join(dir, "spire-server")) && await exists(join(dir, "spire-agent"))) return dir;
  console.error(`building SPIRE v${SPIRE_VERSION} for the tests into ${dir} (first run only; a few minutes)`);
  // Downloads from the module proxy can fail transiently; what was fetched stays cached for the next try.
  for (let attempt = 1;; attempt++) {
    const status = await goInstall(dir);
    if (status.success) break;
    if (attempt === 3) throw new Error(`building SPIRE v${SPIRE_VERSION} failed (go install exited ${status.code})`);
    console.error(`go install failed (exit ${status.code}); trying again (${attempt + 1} of 3)`);
  }
  return dir;
}

/** `go install` of the server and agent from the pinned tool module into `dir`. */
async function goInstall(dir: string): Promise<Deno.CommandStatus> {
  try {
    return await new Deno.Command("go", {
      args: ["install", "github.com/spiffe/spire/cmd/spire-server", "github.com/spiffe/spire/cmd/spire-agent"],
      cwd: TOOL_MODULE,
      env: {
        GOBIN: dir,
        GOFLAGS: "-mod=mod",
        // go.sum pins every module; this one is missing from the checksum database.
        GONOSUMDB: "github.com/GoogleCloudPlatform/cloudsql-proxy",
      },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("Go is needed to build SPIRE for the tests (or set SPIKE_TEST_SPIRE_BIN to prebuilt binaries)");
    }
    throw error;
  }
}

if (import.meta.main) {
  // `.ci/run` builds SPIRE as a step of its own, before the tests.
  console.log(await ensureSpireBinaries());
}
