/**
 * The SDK as an npm package, used the way its users use it: built with
 * `npm ci && npm run build` in `packages/sdk` (skipped while nothing
 * changed), imported by name from Node and from Deno, against a real
 * `spike nexus` process over mTLS — identity from SVID files, and from a
 * Workload API socket. Then the example service in `examples/node-service`
 * reads its database credentials through it, connects to the suite's
 * PostgreSQL with them, and follows a rotation.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { generateRootKey, splitSecret } from "../lib/crypto/shamir.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { connect } from "../lib/sdk/mod.ts";
import { createDevCa, type DevCa, writeSvidFiles } from "../lib/spiffe/dev_ca.ts";
import { createMtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { startWorkloadApiServer } from "../lib/spiffe/workload_api_server.ts";
import {
  ensureNpmInstall,
  ensureSdkPackageBuilt,
  REPO_ROOT,
  run,
  SDK_PACKAGE_DIR,
  ServiceProcess,
} from "./support/npm_package.ts";
import { createTestDatabase, testPostgresUrl } from "./support/postgres_db.ts";
import { freePort, SpikeProcess, waitForReady } from "./support/process.ts";

const TD = "spiffe://spike.ist";
const E2E_SCRIPT = join(SDK_PACKAGE_DIR, "test/e2e.mjs");
const EXAMPLE_DIR = join(REPO_ROOT, "examples/node-service");
/** Bound on one run of the e2e script (it makes about sixty calls and two watches). */
const E2E_TIMEOUT_MS = 60_000;

/** Mints `id` and writes it as SVID files under `dir/name`; returns the directory. */
async function svidDir(ca: DevCa, dir: string, name: string, id: string): Promise<string> {
  const out = join(dir, "ids", name);
  await writeSvidFiles(out, await ca.issue(id));
  return out;
}

/** Hands Nexus its root key the way an operator restores it: two shards, as the restore role. */
async function restoreRootKey(ca: DevCa, nexusUrl: string): Promise<void> {
  const identity = createStaticSource(await ca.issue(`${TD}/spike/pilot/role/restore`));
  const transport = createMtlsClient({ identity, serverId: (id) => isNexus(id) });
  try {
    const shares = splitSecret(generateRootKey(systemRandom), 3, 2);
    const client = new NexusClient(nexusUrl, transport);
    await client.restore(1, shares[0]!.value);
    const done = await client.restore(2, shares[1]!.value);
    assert.equal(done.restored, true);
  } finally {
    transport.close();
  }
}

/** Runs the e2e script; asserts it passed and returns its output. */
async function runE2e(command: string, args: string[], env: Record<string, string>): Promise<string> {
  const result = await run(command, [...args, E2E_SCRIPT], { cwd: SDK_PACKAGE_DIR, env, timeoutMs: E2E_TIMEOUT_MS });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.equal(result.code, 0, `${command} e2e.mjs exited ${result.code}:\n${output}`);
  assert.match(result.stdout, /^sdk e2e: ok$/m, output);
  return output;
}

Deno.test("the npm SDK package on Node and Deno against a real Nexus, and the example service", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "spike_sdk_pkg_" });
  let nexus: SpikeProcess | undefined;
  try {
    await t.step("npm ci && npm run build (skipped while inputs are unchanged)", async () => {
      const done = await ensureSdkPackageBuilt();
      console.log(`  npm ci: ${done.installed ? "ran" : "up to date"}; build: ${done.built ? "ran" : "up to date"}`);
    });

    await t.step("the package holds the built SDK only, with runtime dependencies pinned as in deno.json", async () => {
      const packed = await run("npm", ["pack", "--dry-run", "--json"], { cwd: SDK_PACKAGE_DIR, timeoutMs: 60_000 });
      assert.equal(packed.code, 0, packed.stderr);
      const files: string[] = JSON.parse(packed.stdout)[0].files.map((f: { path: string }) => f.path);
      for (const needed of ["package.json", "README.md", "dist/sdk/mod.js", "dist/sdk/mod.d.ts"]) {
        assert.ok(files.includes(needed), `${needed} is in the package`);
      }
      const stray = files.filter((f) => !f.startsWith("dist/") && f !== "package.json" && f !== "README.md");
      assert.deepEqual(stray, [], "nothing but dist/, package.json and README.md");

      const pkg = JSON.parse(await Deno.readTextFile(join(SDK_PACKAGE_DIR, "package.json")));
      const denoJson = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json")));
      const imported = new Set<string>();
      for (const file of files.filter((f) => f.endsWith(".js"))) {
        const source = await Deno.readTextFile(join(SDK_PACKAGE_DIR, file));
        // The build would not compile code using Deno's API (no Deno types); this catches `globalThis.Deno` too.
        const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|\s)\/\/.*$/gm, "$1");
        assert.doesNotMatch(code, /\bDeno\b/, `${file} uses no Deno API`);
        for (const [, specifier] of code.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
          if (!specifier!.startsWith(".") && !specifier!.startsWith("node:")) imported.add(specifier!);
        }
      }
      const packages = new Set([...imported].map((s) => s.split("/").slice(0, 2).join("/")));
      assert.deepEqual([...packages].sort(), Object.keys(pkg.dependencies).sort(), "imports = dependencies");
      for (const [name, version] of Object.entries(pkg.dependencies)) {
        assert.equal(denoJson.imports[name], `npm:${name}@${version}`, `${name} has deno.json's version`);
      }
    });

    await t.step("a strict TypeScript consumer type-checks against the .d.ts files", async () => {
      const consumer = join(dir, "consumer");
      await Deno.mkdir(join(consumer, "node_modules/@spike"), { recursive: true });
      await Deno.symlink(SDK_PACKAGE_DIR, join(consumer, "node_modules/@spike/sdk"));
      await Deno.writeTextFile(join(consumer, "package.json"), JSON.stringify({ type: "module" }));
      await Deno.copyFile(join(SDK_PACKAGE_DIR, "test/consumer.ts"), join(consumer, "consumer.ts"));
      await Deno.writeTextFile(
        join(consumer, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            module: "nodenext",
            target: "es2022",
            typeRoots: [join(SDK_PACKAGE_DIR, "node_modules/@types")],
            types: ["node"],
          },
          files: ["consumer.ts"],
        }),
      );
      const tsc = join(SDK_PACKAGE_DIR, "node_modules/.bin/tsc");
      const checked = await run(tsc, ["-p", "tsconfig.json"], { cwd: consumer, timeoutMs: 120_000 });
      assert.equal(checked.code, 0, `tsc:\n${checked.stdout}\n${checked.stderr}`);
    });

    // One real Nexus for every run below; each run uses paths of its own.
    const ca = await createDevCa();
    const port = freePort();
    const nexusUrl = `https://127.0.0.1:${port}`;
    const ids = {
      nexus: await svidDir(ca, dir, "nexus", `${TD}/spike/nexus`),
      admin: await svidDir(ca, dir, "admin", `${TD}/spike/pilot/role/superuser`),
      web: await svidDir(ca, dir, "web", `${TD}/app/web`),
      service: await svidDir(ca, dir, "service", `${TD}/app/node-service`),
    };
    nexus = new SpikeProcess(["nexus"], {
      env: {
        SPIKE_SVID_DIR: ids.nexus,
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${port}`,
        SPIKE_NEXUS_BACKEND_STORE: "sqlite",
        SPIKE_NEXUS_DATA_DIR: join(dir, "data"),
        SPIKE_NEXUS_KEEPER_PEERS: "",
      },
    });
    await nexus.waitFor(/nexus listening/);

    await t.step(
      "Node: 503 before Nexus has its key is a NotReadyError, and retried with backoff until it has",
      async () => {
        const script = new ServiceProcess("node", [join(SDK_PACKAGE_DIR, "test/not_ready.mjs")], {
          cwd: SDK_PACKAGE_DIR,
          env: { SPIKE_NEXUS_API_URL: nexusUrl, SPIKE_SVID_DIR: ids.admin },
        });
        try {
          await script.waitFor(/^waiting for Nexus$/);
          await restoreRootKey(ca, nexusUrl);
          await script.waitFor(/^Nexus ready: 0 secrets$/);
          assert.equal((await script.exited).code, 0, script.output);
        } finally {
          await script.stop("SIGKILL");
        }
      },
    );
    await waitForReady(port, 10_000);

    const dbPass = `pw-${crypto.randomUUID()}`;
    const admin = await connect({ nexusUrl, svidDir: ids.admin });
    try {
      await admin.putSecret("app/db", { user: "app", pass: dbPass });
      await admin.putPolicy({
        name: "web",
        spiffeIdPattern: "^spiffe://spike\\.ist/app/web$",
        pathPattern: "^app/",
        permissions: ["read", "write"],
      });
    } finally {
      await admin.close();
    }
    const e2eEnv = (run: string, identity: Record<string, string>) => ({
      SPIKE_NEXUS_API_URL: nexusUrl,
      TEST_ADMIN_SVID_DIR: ids.admin,
      TEST_RUN: run,
      TEST_DB_USER: "app",
      TEST_DB_PASS: dbPass,
      ...identity,
    });

    await t.step("Node: every call, typed errors and a watch, identity from SVID files", async () => {
      const output = await runE2e("node", [], e2eEnv("node-files", { SPIKE_SVID_DIR: ids.web }));
      assert.ok(!output.includes(dbPass), "the script printed no secret value");
    });

    await t.step("Node: the same with the identity from a Workload API socket", async () => {
      const socketPath = join(dir, "workload_api.sock");
      const workloadApi = await startWorkloadApiServer({ socketPath, identity: await ca.issue(`${TD}/app/web`) });
      try {
        await runE2e("node", [], e2eEnv("node-wlapi", { SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}` }));
      } finally {
        await workloadApi.close();
      }
    });

    await t.step("Deno: the built package, imported by name through an import map", async () => {
      const config = join(dir, "deno.json");
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          imports: { "@spike/sdk": join(SDK_PACKAGE_DIR, "dist/sdk/mod.js") },
          nodeModulesDir: "manual",
        }),
      );
      await runE2e(Deno.execPath(), ["run", "--allow-all", "--quiet", `--config=${config}`], {
        ...e2eEnv("deno", { SPIKE_SVID_DIR: ids.web }),
        // The child resolves from the SDK's node_modules, never the network.
        DENO_NO_UPDATE_CHECK: "1",
      });
    });

    await t.step(
      "examples/node-service connects to PostgreSQL with credentials from spike, and follows a rotation",
      async () => {
        await ensureNpmInstall(EXAMPLE_DIR);
        const database = await createTestDatabase();
        const server = postgres(testPostgresUrl(), { max: 1, onnotice: () => {} });
        const roles = [`svc_${crypto.randomUUID().slice(0, 8)}`, `svc_${crypto.randomUUID().slice(0, 8)}`];
        const passwords = roles.map(() => `pw-${crypto.randomUUID()}`);
        let service: ServiceProcess | undefined;
        const superuser = await connect({ nexusUrl, svidDir: ids.admin });
        try {
          const createRole = (i: number) => server.unsafe(`CREATE ROLE ${roles[i]} LOGIN PASSWORD '${passwords[i]}'`);
          await createRole(0);
          await superuser.putSecret("app/service/db", { user: roles[0]!, pass: passwords[0]! });
          await superuser.putPolicy({
            name: "node-service",
            spiffeIdPattern: "^spiffe://spike\\.ist/app/node-service$",
            pathPattern: "^app/service/db$",
            permissions: ["read"],
          });
          const httpPort = freePort();
          service = new ServiceProcess("node", ["server.mjs"], {
            cwd: EXAMPLE_DIR,
            env: {
              SPIKE_NEXUS_API_URL: nexusUrl,
              SPIKE_SVID_DIR: ids.service,
              DB_SECRET_PATH: "app/service/db",
              DB_URL: database.url,
              PORT: String(httpPort),
              WATCH_INTERVAL_MS: "200",
            },
          });
          await service.waitFor(/^listening on /);
          await service.waitFor(new RegExp(`connected to the database as ${roles[0]} \\(credentials version 1`));
          const status = async () => {
            const response = await fetch(`http://127.0.0.1:${httpPort}/`);
            return { code: response.status, text: await response.text() };
          };
          let reply = await status();
          assert.equal(reply.code, 200, reply.text);
          assert.deepEqual(
            { ...JSON.parse(reply.text), serverVersion: undefined },
            { database: "connected", user: roles[0], credentialsVersion: 1, serverVersion: undefined },
          );

          // Rotated before the database knows the new user: the service keeps its connection and tries again.
          await superuser.putSecret("app/service/db", { user: roles[1]!, pass: passwords[1]! });
          await service.waitFor(/could not connect with version 2 of app\/service\/db: .*; retrying/);
          assert.equal(JSON.parse((await status()).text).user, roles[0]);
          await createRole(1);
          await service.waitFor(new RegExp(`connected to the database as ${roles[1]} \\(credentials version 2`));
          reply = await status();
          assert.equal(JSON.parse(reply.text).user, roles[1]);
          assert.equal(JSON.parse(reply.text).credentialsVersion, 2);

          const exit = await service.stop("SIGTERM");
          const output = service.output;
          service = undefined;
          assert.equal(exit.code, 0, `SIGTERM shuts the service down cleanly:\n${output}`);
          for (const password of passwords) assert.ok(!output.includes(password), "no password in the output");
          assert.ok(!reply.text.includes(passwords[1]!), "no password in the answer");
        } finally {
          const output = service ? (await service.stop("SIGKILL"), service.output) : "";
          await superuser.close();
          for (const role of roles) await server.unsafe(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
          await server.end();
          await database.drop();
          if (output) console.error(output);
        }
      },
    );
  } finally {
    await nexus?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
