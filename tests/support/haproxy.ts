/**
 * Runs HAProxy with one of the shipped configurations (`deploy/haproxy/`),
 * whose addresses come from the environment, in the foreground.
 *
 * @module
 */
import { exists } from "./files.ts";

/** A running HAProxy. */
export interface Haproxy {
  /** Stops it and waits for the exit. */
  stop(): Promise<void>;
}

async function findHaproxy(): Promise<string | undefined> {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"]) {
    if (dir && await exists(`${dir}/haproxy`)) return `${dir}/haproxy`;
  }
  return undefined;
}

/** Runs `apt-get` quietly; true when it succeeded. */
async function aptGet(args: string[]): Promise<boolean> {
  const out = await new Deno.Command("apt-get", {
    args: ["-qq", ...args],
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  return out?.success ?? false;
}

/**
 * The HAProxy binary. On a Debian machine where it is missing and the suite
 * runs as root (as on a fresh machine of this project's kind), it is
 * installed from Debian's packages first, like the SPIRE build, so that the
 * README's test command works there as it is.
 */
async function haproxyBinary(): Promise<string> {
  const found = await findHaproxy();
  if (found) return found;
  if (Deno.uid() === 0) {
    console.error("haproxy not found: installing Debian's haproxy package for the HA test");
    if (
      await aptGet(["install", "-y", "haproxy"]) ||
      (await aptGet(["update"]) && await aptGet(["install", "-y", "haproxy"]))
    ) {
      const installed = await findHaproxy();
      if (installed) return installed;
    }
  }
  throw new Error("haproxy not found and not installable here: install it (Debian: apt-get install haproxy)");
}

/** Starts `haproxy -f config` with `env`; resolves once `port` on 127.0.0.1 accepts connections. */
export async function startHaproxy(config: string, env: Record<string, string>, port: number): Promise<Haproxy> {
  const child = new Deno.Command(await haproxyBinary(), {
    args: ["-f", config, "-db"],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 15_000;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (exited || Date.now() > deadline) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        const out = await output;
        const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
        throw new Error(`haproxy did not start listening on ${port}:\n${text}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await output;
    },
  };
}
