/**
 * compose.yaml's spike services run for real, without a Docker engine: the
 * file is loaded with compose-go (Docker Compose's loader), and each spike
 * service of the default stack — the identity service, three Keepers,
 * Nexus, bootstrap and the two seeds — runs as a local `spike` process with
 * exactly the command, environment, health check and start order the file
 * gives it. Only what a container would see differently is mapped: named
 * volumes and secrets to directories and files, service host names and
 * container ports to free ports on 127.0.0.1.
 *
 * Then `down` (every process killed; Keepers and Nexus lose their shards
 * and key) and `up` again on the same volumes: the demo's data comes back
 * with nobody typing anything, as compose.yaml promises. The Postgres
 * database and the Node example are left out (they are not spike; the SDK
 * package test runs the example).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { composeCheck, missingTool, runTool } from "./support/deploy_tools.ts";
import { type CommandResult, freePort, runSpike, SpikeProcess } from "./support/process.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SPIKE_BINARY = "/usr/local/bin/spike";
const RUN = ["identity", "keeper-1", "keeper-2", "keeper-3", "nexus", "bootstrap", "seed-policy", "seed-secret"];
const ONE_SHOTS = new Set(["bootstrap", "seed-policy", "seed-secret"]);

const checker = await composeCheck();

interface Mount {
  type: string;
  source: string;
  target: string;
}

interface LoadedService {
  name: string;
  command: string[] | null;
  environment: Record<string, string>;
  healthcheck: string[] | null;
  dependsOn: Record<string, string>;
  volumes: Mount[];
  secrets: Mount[];
}

/** Container ports each service listens on, from its listen variable. */
function listenPort(service: LoadedService): number | undefined {
  const listen = service.environment.SPIKE_KEEPER_TLS_PORT ?? service.environment.SPIKE_NEXUS_TLS_PORT;
  return listen === undefined ? undefined : Number(listen.split(":").pop());
}

/** Rewrites what a container sees into what this host has: paths, host names, ports. */
function localizer(
  service: LoadedService,
  volumeDir: (name: string) => string,
  ports: ReadonlyMap<string, number>,
  containerPorts: ReadonlyMap<string, number>,
): (text: string) => string {
  const mounts = [
    ...service.volumes.filter((v) => v.type === "volume").map((v) => [v.target, volumeDir(v.source)] as const),
    ...service.secrets.map((s) => [s.target, s.source] as const),
  ];
  return (text) => {
    let out = text;
    for (const [target, local] of mounts) {
      out = out.replace(new RegExp(`(^|[=,])${target.replace(/[/.]/g, "\\$&")}(?=/|$|,)`, "g"), `$1${local}`);
    }
    for (const [name, port] of ports) {
      out = out.replaceAll(`https://${name}:${containerPorts.get(name)}`, `https://127.0.0.1:${port}`);
    }
    const own = ports.get(service.name);
    if (own !== undefined) {
      const inside = containerPorts.get(service.name)!;
      out = out.replaceAll(`https://127.0.0.1:${inside}`, `https://127.0.0.1:${own}`);
      if (out === `:${inside}`) out = `127.0.0.1:${own}`;
    }
    return out;
  };
}

function exits(result: CommandResult, code: number, what: string): CommandResult {
  assert.equal(result.code, code, `${what}: exit ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

Deno.test({
  name: "compose.yaml's spike services run as the file says; down and up bring the data back without a human",
  ignore: !checker && missingTool("compose-check", "needs Go to build tests/compose"),
  fn: async () => {
    const loaded = await runTool(checker!, [join(ROOT, "compose.yaml")]);
    assert.equal(loaded.code, 0, loaded.output);
    const services = new Map(
      (JSON.parse(loaded.stdout) as LoadedService[]).filter((s) => RUN.includes(s.name)).map((s) => [s.name, s]),
    );
    assert.deepEqual([...services.keys()].sort(), [...RUN].sort());
    const tmp = await Deno.makeTempDir({ prefix: "spike_compose_run_" });
    const volumeDir = (name: string) => join(tmp, "volumes", name);
    const containerPorts = new Map<string, number>();
    const ports = new Map<string, number>();
    for (const service of services.values()) {
      const port = listenPort(service);
      if (port !== undefined) {
        containerPorts.set(service.name, port);
        ports.set(service.name, freePort());
      }
    }
    const local = new Map([...services.values()].map((s) => [s.name, localizer(s, volumeDir, ports, containerPorts)]));
    const argsOf = (name: string, args: readonly string[]) => args.map(local.get(name)!);
    const envOf = (name: string) =>
      Object.fromEntries(Object.entries(services.get(name)!.environment).map(([k, v]) => [k, local.get(name)!(v)]));

    let running = new Map<string, SpikeProcess>();
    const healthy = async (name: string) => {
      const test = services.get(name)!.healthcheck!;
      assert.equal(test[1], SPIKE_BINARY);
      const deadline = Date.now() + 90_000;
      while (true) {
        const result = await runSpike(argsOf(name, test.slice(2)), { env: envOf(name) });
        if (result.code === 0) return;
        if (Date.now() > deadline) {
          throw new Error(`${name} never became healthy: ${result.stderr}\n${running.get(name)?.output ?? ""}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    };
    const outputs = new Map<string, CommandResult>();
    /** `docker compose up`: each service once its dependencies meet their conditions. */
    const up = async () => {
      running = new Map();
      const done = new Map<string, Promise<void>>();
      const start = (name: string): Promise<void> => {
        if (!done.has(name)) {
          done.set(
            name,
            (async () => {
              const service = services.get(name)!;
              await Promise.all(
                Object.entries(service.dependsOn).map(async ([dep, condition]) => {
                  await start(dep);
                  if (condition === "service_healthy") await healthy(dep);
                }),
              );
              const args = argsOf(name, service.command!);
              if (ONE_SHOTS.has(name)) {
                const result = await runSpike(args, { env: envOf(name), timeoutMs: 120_000 });
                outputs.set(name, result);
                exits(result, 0, `one-shot ${name}`);
              } else {
                running.set(name, new SpikeProcess(args, { env: envOf(name) }));
              }
            })(),
          );
        }
        return done.get(name)!;
      };
      await Promise.all(RUN.map(start));
    };
    const down = async () => {
      await Promise.all([...running.values()].map((child) => child.stop("SIGKILL")));
      running = new Map();
    };
    const pilot = (args: string[]) =>
      runSpike(args, {
        env: {
          SPIKE_NEXUS_API_URL: `https://127.0.0.1:${ports.get("nexus")}`,
          SPIKE_SVID_DIR: join(volumeDir("identities"), "pilot-superuser"),
        },
      });
    try {
      await up();
      assert.match(outputs.get("bootstrap")!.stderr, /bootstrapping a new root key/);
      const password = await Deno.readTextFile(join(ROOT, "deploy/compose/app-db-password.txt"));
      assert.equal(exits(await pilot(["secret", "get", "app/db", "pass"]), 0, "seeded secret").stdout, password);
      assert.match(exits(await pilot(["policy", "get", "node-service"]), 0, "seeded policy").stdout, /app\/db/);
      exits(await pilot(["secret", "put", "app/notes", "text=kept"]), 0, "a secret of the user's");

      await down();
      await up();
      assert.match(outputs.get("bootstrap")!.stderr, /restoring the root key from the 3 recovery shards/);
      assert.equal(exits(await pilot(["secret", "get", "app/notes", "text"]), 0, "after down/up").stdout, "kept");
      const versions = JSON.parse(
        exits(await pilot(["secret", "metadata", "get", "app/db", "-f", "json"]), 0, "meta").stdout,
      );
      assert.ok(JSON.stringify(versions).includes('"currentVersion":2'), "the seed wrote app/db again");
    } finally {
      await down();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
