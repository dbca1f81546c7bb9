/**
 * Starts one role of the dev stack as a child process with that role's
 * least Deno permissions, and relays its output with a `[name]` prefix.
 *
 * @module
 */
import { forEachLine } from "./lines.ts";
import { type ProcessRole, roleEnvironment, rolePermissionFlags, type RoleResources } from "../config/permissions.ts";

/** How to launch `spike` again: from source with `deno run`, or the compiled binary. */
export interface SpikeLauncher {
  /** The executable (the Deno binary, or the compiled `spike`). */
  readonly executable: string;
  /** Arguments placed before the role's own arguments, given its permission flags. */
  prefixArgs(permissionFlags: readonly string[]): string[];
}

/**
 * The launcher for this process: `deno run <flags> --config deno.json
 * cmd/spike.ts` from source, or the compiled binary itself (whose
 * permissions were fixed at compile time).
 */
export function currentLauncher(mainModule: string, configFile: string): SpikeLauncher {
  if (Deno.build.standalone) {
    return { executable: Deno.execPath(), prefixArgs: () => [] };
  }
  return {
    executable: Deno.execPath(),
    prefixArgs: (flags) => ["run", ...flags, `--config=${configFile}`, mainModule],
  };
}

/** A running role child. */
export interface RoleProcess {
  /** Display name, e.g. `keeper-2`. */
  readonly name: string;
  /** Resolves with the exit status. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** The last output lines (for error reports). */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `spike <args>` as role `role` with its least permissions (and its memory settings). */
export function startRoleProcess(options: {
  name: string;
  role: ProcessRole;
  args: readonly string[];
  env: Record<string, string>;
  resources: RoleResources;
  launcher: SpikeLauncher;
  relay: (line: string) => void;
}): RoleProcess {
  const flags = rolePermissionFlags(options.role, options.resources);
  const child = new Deno.Command(options.launcher.executable, {
    args: [...options.launcher.prefixArgs(flags), ...options.args],
    env: { ...roleEnvironment(options.role), ...options.env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const recent: string[] = [];
  const relayStream = (stream: ReadableStream<Uint8Array>) =>
    forEachLine(stream, (line) => {
      recent.push(line);
      if (recent.length > 40) recent.shift();
      options.relay(`[${options.name}] ${line}`);
    });
  const relayed = Promise.all([relayStream(child.stdout), relayStream(child.stderr)]);
  const exited = relayed.then(() => child.status);
  return {
    name: options.name,
    exited,
    tail: (lines = 10) => recent.slice(-lines).join("\n"),
    async stop(graceMs = 5000) {
      try {
        child.kill("SIGTERM");
      } catch {
        return void await exited;
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
