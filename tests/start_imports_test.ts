/**
 * What each entry point loads before it can do anything: the static import
 * graph (dynamic `import()`s excluded), read from `deno info --json`.
 * Heavy packages (gRPC, the Postgres driver, SQLite, the X.509 and regex
 * analysis libraries, Hono, YAML) must load only where they are used, so a
 * CLI command or a Nexus start does not pay for code it never runs.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

interface InfoDependency {
  readonly code?: { readonly specifier: string };
  readonly isDynamic?: boolean;
}

interface InfoModule {
  readonly specifier: string;
  readonly kind?: string;
  readonly npmPackage?: string;
  readonly dependencies?: readonly InfoDependency[];
}

interface Info {
  readonly roots: readonly string[];
  readonly modules: readonly InfoModule[];
  readonly redirects: Readonly<Record<string, string>>;
}

/** Every module `entry` loads statically: local files, `npm:` packages (by name) and `node:` built-ins. */
async function staticGraph(entry: string): Promise<{ files: Set<string>; npm: Set<string>; node: Set<string> }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const info: Info = JSON.parse(new TextDecoder().decode(output.stdout));
  const byUrl = new Map(info.modules.map((m) => [m.specifier, m]));
  const resolve = (specifier: string) => {
    let s = specifier;
    for (let hops = 0; info.redirects[s] !== undefined && hops < 10; hops++) s = info.redirects[s]!;
    return s;
  };
  const files = new Set<string>();
  const npm = new Set<string>();
  const node = new Set<string>();
  const seen = new Set<string>();
  const pending = [resolve(info.roots[0]!)];
  while (pending.length > 0) {
    const specifier = pending.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    if (specifier.startsWith("node:")) {
      node.add(specifier);
      continue;
    }
    if (specifier.startsWith("npm:")) {
      // npm:/name@version/sub or npm:name@version: keep the package name.
      const match = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)/.exec(specifier);
      npm.add(match ? match[1]! : specifier);
      continue;
    }
    const module = byUrl.get(specifier);
    if (module === undefined) continue;
    if (specifier.startsWith("file:")) files.add(specifier.slice(`file://${REPO_ROOT}`.length));
    for (const dependency of module.dependencies ?? []) {
      if (dependency.code && !dependency.isDynamic) pending.push(resolve(dependency.code.specifier));
    }
  }
  return { files, npm, node };
}

/** Packages only a server role or one command uses; none may load with the command tree. */
const HEAVY_PACKAGES = ["@grpc/grpc-js", "postgres", "@peculiar/x509", "refa", "hono", "yaml", "prom-client"];

Deno.test("the spike command tree (--help, completions, version) loads no npm package, TLS, crypto, files or SQLite", async () => {
  const { npm, node, files } = await staticGraph("cmd/spike.ts");
  assert.deepEqual([...npm], [], "npm packages");
  // node:fs alone costs ~20 ms of CPU in Deno; the tree's logger users import it when they run.
  for (const builtin of ["node:https", "node:tls", "node:crypto", "node:sqlite", "node:net", "node:fs"]) {
    assert.ok(!node.has(builtin), `${builtin} is loaded`);
  }
  for (const file of ["lib/spiffe/mtls_client.ts", "lib/nexus/server.ts", "lib/keeper/server.ts"]) {
    assert.ok(!files.has(file), `${file} is loaded`);
  }
  // Nor any server, store, key or rotation module (the sealed policies, root key rotation and key-value
  // commands added code on both sides; the tree keeps only what --help and argument parsing need).
  for (const file of files) {
    assert.ok(!/^lib\/(nexus|keeper|metrics|audit)\//.test(file), `${file} is loaded`);
    assert.ok(!/^lib\/store\/.*_(store|database|connection)\.ts$/.test(file), `${file} is loaded`);
    assert.ok(!/^lib\/crypto\/(aead|kdf|shamir|scalar)\.ts$/.test(file), `${file} is loaded`);
  }
});

Deno.test("every CLI command's module loads no npm package, TLS or crypto until its session opens", async () => {
  for (
    const entry of [
      "cmd/secret.ts",
      "cmd/secret_write.ts",
      "cmd/secret_list.ts",
      "cmd/secret_metadata.ts",
      "cmd/secret_destroy.ts",
      "cmd/secret_get_many.ts",
      "cmd/policy.ts",
      "cmd/cipher.ts",
      "cmd/operator.ts",
      "cmd/audit.ts",
      "cmd/status.ts",
      "cmd/exec.ts",
    ]
  ) {
    const { npm, node } = await staticGraph(entry);
    assert.deepEqual([...npm], [], `${entry} loads npm packages`);
    for (const builtin of ["node:https", "node:tls", "node:crypto", "node:sqlite", "node:fs"]) {
      assert.ok(!node.has(builtin), `${entry} loads ${builtin}`);
    }
  }
});

Deno.test("a CLI session (secret get with SVID files) loads the TLS client, not servers, stores, gRPC or YAML", async () => {
  for (
    const entry of [
      "lib/spiffe/mtls_client.ts",
      "lib/client/nexus_client.ts",
      "lib/spiffe/source_select.ts",
      "cmd/secret.ts",
      "cmd/pilot_session.ts",
    ]
  ) {
    const { npm, node } = await staticGraph(entry);
    for (const name of HEAVY_PACKAGES) assert.ok(!npm.has(name), `${entry} loads ${name}`);
    assert.ok(!node.has("node:sqlite"), `${entry} loads node:sqlite`);
  }
});

Deno.test("Nexus loads no Hono, store module, Postgres, gRPC, X.509 builder or pattern analysis at start", async () => {
  const { npm, node, files } = await staticGraph("lib/nexus/server.ts");
  // The API is served without a framework (lib/nexus/http_handler.ts).
  // prom-client loads at the first scrape of /metrics (lib/metrics/registry.ts).
  for (const name of ["hono", "@grpc/grpc-js", "postgres", "@peculiar/x509", "refa", "yaml", "prom-client"]) {
    assert.ok(!npm.has(name), `Nexus loads ${name} at start`);
  }
  assert.ok(!node.has("node:sqlite"), "the SQLite module loads with the SQLite store only");
  for (const store of ["sqlite_store", "sqlite_worker_store", "postgres_store", "memory_store"]) {
    assert.ok(!files.has(`lib/store/${store}.ts`), `${store} loads before it is chosen`);
  }
});

Deno.test("the SQLite store loads node:sqlite and not Postgres; the Keeper loads no store, gRPC or X.509 library", async () => {
  const sqlite = await staticGraph("lib/store/sqlite_store.ts");
  assert.ok(sqlite.node.has("node:sqlite"));
  assert.ok(!sqlite.npm.has("postgres"));
  const keeper = await staticGraph("lib/keeper/server.ts");
  for (const name of ["@grpc/grpc-js", "postgres", "@peculiar/x509", "refa", "yaml", "prom-client"]) {
    assert.ok(!keeper.npm.has(name), `the Keeper loads ${name}`);
  }
  assert.ok(!keeper.node.has("node:sqlite"));
});
