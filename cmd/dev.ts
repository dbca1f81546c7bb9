/**
 * `spike dev`: the local stack; `spike dev identity` and `identities` (development CA);
 * `spike dev unlock` (root key for a stack of separate containers).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { DevStackError } from "../lib/dev/errors.ts";
import { currentLauncher } from "../lib/dev/role_process.ts";
import { readyBanner } from "../lib/dev/ready_banner.ts";
import { PINNED_DENO_VERSION } from "../lib/install/install_plan.ts";
import { findOnPath, isExecutableFile } from "../lib/install/path_lookup.ts";
import { checkTrustDomainName } from "../lib/spiffe/id.ts";
import { devIdentitiesCommand } from "./dev_identities.ts";
import { devIdentityCommand } from "./dev_identity.ts";
import { devUnlockCommand } from "./dev_unlock.ts";

const INHERITED_ENV = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "NO_COLOR", "SPIKE_LOG_LEVEL"];

function port(value: string, flag: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new UsageError(`${flag}: '${value}' is not a port number (1-65535)`);
  }
  return Number(value);
}

/** The `dev` command. */
export const devCommand: CommandSpec = {
  name: "dev",
  summary: "Run the whole stack locally with a development CA",
  details: "Starts three Keepers and Nexus as child processes (each with its role's least Deno permissions),\n" +
    "bootstraps the root key on the first run, prints 'ready' and writes <dir>/pilot.env.\n" +
    "Ctrl-C stops everything; running it again on the same --dir brings the same secrets back.\n" +
    "For development only: the CA key and the recovery shards are kept in <dir>.",
  positionals: { min: 0, max: 0 },
  options: {
    dir: { type: "string", description: "State directory (default ~/.spike/dev)", valueName: "dir" },
    "nexus-port": { type: "string", description: "Nexus port on 127.0.0.1 (default 8553)", valueName: "port" },
    "keeper-ports": {
      type: "string",
      description: "Keeper ports on 127.0.0.1 (default 8443,8543,8643)",
      valueName: "list",
    },
    "trust-domain": { type: "string", description: "Trust domain (default spike.ist)", valueName: "name" },
    "keeper-update-interval": {
      type: "string",
      description: "How often Nexus re-sends Keeper shards (default 5m)",
      valueName: "duration",
    },
  },
  subcommands: [devIdentityCommand, devIdentitiesCommand, devUnlockCommand],
  run: async ({ options, io }) => {
    const home = io.env.HOME;
    const dir = (options.dir as string | undefined) ?? (home ? `${home}/.spike/dev` : undefined);
    if (!dir) throw new UsageError("HOME is not set: give --dir");
    const nexusPort = port((options["nexus-port"] as string | undefined) ?? "8553", "--nexus-port");
    const keeperPorts = ((options["keeper-ports"] as string | undefined) ?? "8443,8543,8643")
      .split(",").map((p) => port(p.trim(), "--keeper-ports"));
    const trustDomain = (options["trust-domain"] as string | undefined) ?? "spike.ist";
    try {
      checkTrustDomainName(trustDomain);
    } catch (error) {
      throw new UsageError(`--trust-domain: ${(error as Error).message}`);
    }
    const baseEnv: Record<string, string> = {};
    for (const name of INHERITED_ENV) if (io.env[name] !== undefined) baseEnv[name] = io.env[name]!;

    // The stack (development CA, TLS client) loads when the command runs, not with the command tree.
    const { startDevStack } = await import("../lib/dev/stack.ts");
    let stack;
    try {
      stack = await startDevStack({
        dir,
        nexusPort,
        keeperPorts,
        trustDomain,
        keeperUpdateInterval: (options["keeper-update-interval"] as string | undefined) ?? "5m",
        launcher: currentLauncher(Deno.mainModule, new URL("../deno.json", import.meta.url).pathname),
        baseEnv,
        log: (line) => io.stderr(`${line}\n`),
      });
    } catch (error) {
      if (error instanceof DevStackError) throw new CliError(error.message);
      throw error;
    }
    // A compiled binary has no repository to install from: whoever runs it already has it.
    const spikeOnPath = Deno.build.standalone || findOnPath("spike", io.env.PATH, isExecutableFile) !== undefined;
    io.stdout(readyBanner({
      nexusUrl: stack.nexusUrl,
      pilotEnvFile: stack.pilotEnvFile,
      auditFile: stack.auditFile,
      ...(home ? { home } : {}),
      ...(spikeOnPath ? {} : {
        install: {
          repoDir: fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, ""),
          denoOnPath: findOnPath("deno", io.env.PATH, isExecutableFile) !== undefined,
          denoVersion: PINNED_DENO_VERSION,
        },
      }),
    }));
    const signal = new Promise<string>((resolve) => {
      Deno.addSignalListener("SIGINT", () => resolve("SIGINT"));
      Deno.addSignalListener("SIGTERM", () => resolve("SIGTERM"));
    });
    const reason = await Promise.race([signal.then(() => undefined), stack.failed]);
    io.stderr("spike dev: stopping\n");
    await stack.stop();
    if (reason !== undefined) throw new CliError(`stopped because ${reason}`);
    io.stderr("spike dev: stopped\n");
    return 0;
  },
};
