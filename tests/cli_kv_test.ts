/**
 * The key-value commands [ours] of the real `spike` CLI, run as child
 * processes against a real `spike nexus` process over mTLS with a SQLite
 * store: `put --cas`, `patch`, `destroy`, `metadata put/delete`, `--ttl`,
 * `list PREFIX` (one level, `--recursive`, `--tree`), `move` and
 * `get-many`, with their exit codes and messages. The root key arrives by
 * `spike operator restore`, as in `cli_test.ts`.
 */
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { runSpike } from "./support/process.ts";
import { exits, startRestoredNexus } from "./support/restored_nexus.ts";

Deno.test("spike CLI key-value commands against a real Nexus", async (t) => {
  const nexus = await startRestoredNexus("spike_cli_kv_", {
    nexusEnv: () => ({ SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL: "500ms" }),
  });
  try {
    const web = await nexus.mint("app/web");
    const as = (role: "superuser" | "web", args: string[], stdin?: string) =>
      role === "superuser"
        ? nexus.admin(args, stdin)
        : runSpike(args, { env: nexus.env(web), ...(stdin === undefined ? {} : { stdin }) });
    const su = (...args: string[]) => as("superuser", args);

    await t.step("put --cas: writes only over the expected version; a conflict exits 1 and says why", async () => {
      exits(await su("secret", "put", "cas/db", "pass=one", "--cas", "0"), 0, "put --cas 0 on a new path");
      const [again, stale, bad] = await Promise.all([
        su("secret", "put", "cas/db", "pass=again", "--cas", "0"),
        su("secret", "put", "cas/db", "pass=stale", "--cas", "5"),
        su("secret", "put", "cas/db", "pass=bad", "--cas", "x"),
      ]);
      for (const result of [again, stale]) assert.match(exits(result, 1, "cas conflict").stderr, /conflict/);
      assert.match(exits(bad, 2, "--cas x").stderr, /not a version number/);
      exits(await su("secret", "put", "cas/db", "pass=two", "--cas", "1"), 0, "put --cas 1");
      const meta = parseYaml(exits(await su("secret", "metadata", "get", "cas/db"), 0, "metadata").stdout);
      assert.equal(meta.metadata.currentVersion, 2);
    });

    await t.step("patch: merges keys (and --remove drops one) into a new version", async () => {
      exits(await su("secret", "put", "patch/db", "user=admin", "pass=one", "host=h"), 0, "put");
      const patched = exits(
        await su("secret", "patch", "patch/db", "pass=two", "--remove", "host", "--from-stdin", "port"),
        0,
        "patch",
      );
      assert.match(patched.stderr, /OK: secret patch\/db patched/);
      const data = JSON.parse(exits(await su("secret", "get", "patch/db", "-f", "json"), 0, "get").stdout);
      assert.deepEqual(data, { user: "admin", pass: "two", port: "" });
      const [missing, conflict, both, none] = await Promise.all([
        su("secret", "patch", "patch/missing", "a=b"),
        su("secret", "patch", "patch/db", "a=b", "--cas", "1"),
        su("secret", "patch", "patch/db", "a=b", "--remove", "a"),
        su("secret", "patch", "patch/db"),
      ]);
      assert.match(exits(missing, 3, "patch of a missing secret").stderr, /not found/);
      assert.match(exits(conflict, 1, "patch --cas stale").stderr, /conflict/);
      assert.match(exits(both, 2, "set and remove one key").stderr, /both set and removed/);
      assert.match(exits(none, 2, "patch without changes").stderr, /at least one key=value/);
    });

    await t.step("destroy -v and metadata delete: for good, after asking (or --yes)", async () => {
      exits(await su("secret", "put", "gone/db", "v=1"), 0, "put 1");
      exits(await su("secret", "put", "gone/db", "v=2"), 0, "put 2");
      const [noVersions, zero, declined] = await Promise.all([
        su("secret", "destroy", "gone/db"),
        su("secret", "destroy", "gone/db", "-v", "0", "--yes"),
        as("superuser", ["secret", "destroy", "gone/db", "-v", "1"], "n\n"),
      ]);
      assert.match(exits(noVersions, 2, "destroy without -v").stderr, /-v/);
      exits(zero, 2, "destroy -v 0");
      assert.match(exits(declined, 1, "destroy declined").stderr, /nothing destroyed/);
      const asked = exits(await as("superuser", ["secret", "destroy", "gone/db", "-v", "1"], "y\n"), 0, "destroy");
      assert.match(asked.stderr, /for good\? \[y\/N\]/);
      const meta = JSON.parse(exits(await su("secret", "metadata", "get", "gone/db", "-f", "json"), 0, "meta").stdout);
      assert.equal(meta.versions["1"].destroyed, true);
      exits(await su("secret", "get", "gone/db", "-v", "1"), 3, "get a destroyed version");
      exits(await su("secret", "undelete", "gone/db", "-v", "1"), 3, "undelete a destroyed version");
      exits(await su("secret", "metadata", "delete", "gone/db", "--yes"), 0, "metadata delete");
      const [get, again] = await Promise.all([
        su("secret", "metadata", "get", "gone/db"),
        su("secret", "metadata", "delete", "gone/db", "-y"),
      ]);
      exits(get, 3, "metadata of a removed path");
      assert.match(exits(again, 3, "metadata delete of a removed path").stderr, /not found/);
    });

    await t.step("metadata put: custom metadata without a new version; --clear; limits", async () => {
      exits(await su("secret", "put", "meta/db", "pass=x"), 0, "put");
      exits(await su("secret", "metadata", "put", "meta/db", "owner=team a", "ticket=OPS-1=2"), 0, "metadata put");
      const meta = JSON.parse(exits(await su("secret", "metadata", "get", "meta/db", "-f", "json"), 0, "get").stdout);
      assert.deepEqual(meta.metadata.customMetadata, { owner: "team a", ticket: "OPS-1=2" });
      assert.equal(meta.metadata.currentVersion, 1);
      const yaml = parseYaml(exits(await su("secret", "metadata", "get", "meta/db"), 0, "get yaml").stdout);
      assert.equal(yaml.metadata.customMetadata.owner, "team a");
      const [tooLong, nothing, both, missing] = await Promise.all([
        su("secret", "metadata", "put", "meta/db", `k=${"v".repeat(513)}`),
        su("secret", "metadata", "put", "meta/db"),
        su("secret", "metadata", "put", "meta/db", "a=b", "--clear"),
        su("secret", "metadata", "put", "meta/none", "a=b"),
      ]);
      assert.match(exits(tooLong, 1, "value over 512 bytes").stderr, /invalid/);
      exits(nothing, 2, "metadata put without pairs");
      exits(both, 2, "pairs and --clear");
      exits(missing, 3, "metadata put on a missing secret");
      exits(await su("secret", "metadata", "put", "meta/db", "--clear"), 0, "clear");
      const cleared = JSON.parse(
        exits(await su("secret", "metadata", "get", "meta/db", "-f", "json"), 0, "get").stdout,
      );
      assert.equal(cleared.metadata.customMetadata, undefined);
    });

    await t.step("--ttl: a real 1s expiry; metadata shows it; metadata put changes it; bad values exit 2", async () => {
      exits(await su("secret", "put", "ttl/db", "pass=x", "--ttl", "1s"), 0, "put --ttl 1s");
      exits(await su("secret", "put", "ttl/keep", "v=1"), 0, "put");
      exits(await su("secret", "put", "ttl/keep", "v=2", "--version-ttl", "1s"), 0, "put --version-ttl");
      exits(await su("secret", "put", "ttl/long", "v=1", "--expires-at", "2099-01-01T00:00:00Z"), 0, "--expires-at");
      const meta = JSON.parse(exits(await su("secret", "metadata", "get", "ttl/long", "-f", "json"), 0, "meta").stdout);
      assert.equal(meta.metadata.expiresAt, "2099-01-01T00:00:00.000Z");
      exits(await su("secret", "metadata", "put", "ttl/long", "--no-expiry"), 0, "--no-expiry");
      const cleared = JSON.parse(exits(await su("secret", "metadata", "get", "ttl/long", "-f", "json"), 0, "m").stdout);
      assert.equal(cleared.metadata.expiresAt, undefined);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const [gone, kept, version2] = await Promise.all([
        su("secret", "get", "ttl/db"),
        su("secret", "get", "ttl/keep", "v"),
        su("secret", "get", "ttl/keep", "-v", "2"),
      ]);
      assert.match(exits(gone, 3, "get after expiry").stderr, /not found/);
      assert.equal(exits(kept, 0, "the unexpired version").stdout, "1");
      exits(version2, 3, "the expired version");
      const [badTtl, both, past] = await Promise.all([
        su("secret", "put", "ttl/x", "a=b", "--ttl", "24"),
        su("secret", "put", "ttl/x", "a=b", "--ttl", "1h", "--expires-at", "2099-01-01T00:00:00Z"),
        su("secret", "put", "ttl/x", "a=b", "--expires-at", "2001-01-01T00:00:00Z"),
      ]);
      assert.match(exits(badTtl, 2, "--ttl 24").stderr, /not a duration/);
      exits(both, 2, "--ttl and --expires-at");
      assert.match(exits(past, 1, "an expiry in the past").stderr, /invalid/);
    });

    await t.step(
      "list PREFIX: one level, --recursive, --tree, -f json; a workload sees only what it may read",
      async () => {
        for (const path of ["tree/a/x", "tree/a/y/z", "tree/b", "tree/c/d"]) {
          exits(await su("secret", "put", path, "v=1"), 0, `put ${path}`);
        }
        const [level, slash, recursive, tree, json, all, badTree] = await Promise.all([
          su("secret", "list", "tree"),
          su("secret", "list", "tree/a/"),
          su("secret", "list", "tree", "-r"),
          su("secret", "list", "tree", "--tree"),
          su("secret", "list", "tree/a", "--recursive", "-f", "json"),
          su("secret", "list"),
          su("secret", "list", "tree", "--tree", "-f", "json"),
        ]);
        assert.equal(exits(level, 0, "list tree").stdout, "tree/a/\ntree/b\ntree/c/\n");
        assert.equal(exits(slash, 0, "list tree/a/").stdout, "tree/a/x\ntree/a/y/\n");
        assert.equal(exits(recursive, 0, "list -r").stdout, "tree/a/x\ntree/a/y/z\ntree/b\ntree/c/d\n");
        assert.equal(
          exits(tree, 0, "list --tree").stdout,
          "tree/\n├── a/\n│   ├── x\n│   └── y/\n│       └── z\n├── b\n└── c/\n    └── d\n",
        );
        assert.deepEqual(JSON.parse(exits(json, 0, "list -f json").stdout), ["tree/a/x", "tree/a/y/z"]);
        assert.ok(exits(all, 0, "list").stdout.split("\n").includes("tree/a/y/z"), "no prefix: every path");
        exits(badTree, 2, "--tree -f json");
        exits(
          await su(
            "policy",
            "create",
            "--name",
            "web-tree",
            "--spiffeid-pattern",
            "^spiffe://spike\\.ist/app/web$",
            "--path-pattern",
            "^tree/a/",
            "--permissions",
            "read",
          ),
          0,
          "policy create",
        );
        const [scoped, scopedTree] = await Promise.all([
          as("web", ["secret", "list", "-r"]),
          as("web", ["secret", "list", "tree", "--tree"]),
        ]);
        assert.equal(exits(scoped, 0, "workload list").stdout, "tree/a/x\ntree/a/y/z\n");
        assert.equal(
          exits(scopedTree, 0, "workload tree").stdout,
          "tree/\n└── a/\n    ├── x\n    └── y/\n        └── z\n",
        );
      },
    );

    await t.step("move SRC DST: versions and metadata go along; conflict and missing source fail clearly", async () => {
      exits(await su("secret", "put", "mv/a", "v=1"), 0, "put 1");
      exits(await su("secret", "put", "mv/a", "v=2"), 0, "put 2");
      exits(await su("secret", "put", "mv/taken", "v=x"), 0, "put taken");
      const moved = exits(await su("secret", "move", "mv/a", "mv/b"), 0, "move");
      assert.match(moved.stderr, /OK: secret mv\/a moved to mv\/b/);
      const [old, v1, conflict, missing, same] = await Promise.all([
        su("secret", "get", "mv/a"),
        su("secret", "get", "mv/b", "v", "-v", "1"),
        su("secret", "move", "mv/b", "mv/taken"),
        su("secret", "move", "mv/none", "mv/c"),
        su("secret", "move", "mv/b", "mv/b"),
      ]);
      exits(old, 3, "the old path is gone");
      assert.equal(exits(v1, 0, "version 1 moved along").stdout, "1");
      assert.match(exits(conflict, 1, "move onto an existing path").stderr, /conflict/);
      exits(missing, 3, "move of a missing secret");
      exits(same, 2, "move onto itself");
    });

    await t.step("get-many: values, not found and denied per path; exit codes; -f json", async () => {
      exits(await su("secret", "put", "gm/a", "v=a", "w=b"), 0, "put a");
      exits(await su("secret", "put", "gm/b", "v=b"), 0, "put b");
      const [all, some, json, denied] = await Promise.all([
        su("secret", "get-many", "gm/a", "gm/b"),
        su("secret", "get-many", "gm/a", "gm/none"),
        su("secret", "get-many", "gm/a", "gm/none", "-f", "json"),
        as("web", ["secret", "get-many", "tree/a/x", "gm/a"]),
      ]);
      assert.equal(exits(all, 0, "get-many").stdout, "gm/a:\n  v: a\n  w: b\ngm/b:\n  v: b\n");
      assert.equal(
        exits(some, 3, "get-many with a missing path").stdout,
        "gm/a:\n  v: a\n  w: b\ngm/none: not found\n",
      );
      assert.match(some.stderr, /1 of 2 secrets not read/);
      assert.deepEqual(JSON.parse(exits(json, 3, "get-many -f json").stdout), {
        "gm/a": { data: { v: "a", w: "b" } },
        "gm/none": { err: "api_not_found" },
      });
      assert.equal(
        exits(denied, 1, "a workload denied one path").stdout,
        "tree/a/x:\n  v: 1\ngm/a: not authorized (no policy grants read)\n",
      );
    });
  } finally {
    const status = await nexus.process.stop();
    await nexus.close();
    assert.equal(status.code, 0, `nexus exit after SIGTERM:\n${nexus.process.output}`);
  }
});
