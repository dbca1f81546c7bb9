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

async function haproxyBinary(): Promise<string> {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"]) {
    if (dir && await exists(`${dir}/haproxy`)) return `${dir}/haproxy`;
  }
  throw new Error("haproxy not found: install it (Debian: apt-get install haproxy); .ci/run does");
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
