/**
 * The real `spike` CLI, run as child processes, against a real `spike nexus`
 * process over mTLS with a SQLite store. There are no Keepers: the test makes
 * a root key, splits it, and hands Nexus its key with `spike operator
 * restore`, the way an operator would after losing every Keeper.
 *
 * Child processes cost about half a second each on two cores, so commands
 * that do not depend on each other run side by side.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { generateRootKey, splitSecret } from "../lib/crypto/shamir.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { formatRecoveryShard, parseRecoveryFile, parseRecoveryShard } from "../lib/pilot/recovery_file.ts";
import { type CommandResult, freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

const ROLES = {
  nexus: "spiffe://spike.ist/spike/nexus",
  superuser: "spiffe://spike.ist/spike/pilot/role/superuser",
  restore: "spiffe://spike.ist/spike/pilot/role/restore",
  recover: "spiffe://spike.ist/spike/pilot/role/recover",
  outsider: "spiffe://spike.ist/app/outsider",
} as const;
type Role = keyof typeof ROLES;

/** Asserts exit code `code`; the message carries the output to explain a failure. */
function exits(result: CommandResult, code: number, what: string): CommandResult {
  assert.equal(result.code, code, `${what}: exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** Mints every identity with `spike dev identity` (the CA is created by the first call). */
async function mintIdentities(dir: string): Promise<Record<Role, string>> {
  const ca = join(dir, "ca");
  const out = Object.fromEntries(Object.keys(ROLES).map((r) => [r, join(dir, "ids", r)])) as Record<Role, string>;
  const mint = async (role: Role) =>
    exits(
      await runSpike(["dev", "identity", ROLES[role], "--dir", ca, "--out", out[role], "--ttl", "1h"], {
        env: {},
      }),
      0,
      `dev identity ${role}`,
    );
  await mint("nexus");
  await Promise.all((["superuser", "restore", "recover", "outsider"] as const).map(mint));
  return out;
}

Deno.test("spike CLI against a real Nexus: restore, secrets, policies, cipher, recover, errors", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "spike_cli_" });
  let nexus: SpikeProcess | undefined;
  try {
    const ids = await mintIdentities(dir);
    const port = freePort();
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
    const recoveryDir = join(dir, "recover");
    // HOME stays the test's own: children share its Deno cache.
    const env = (role: Role, extra: Record<string, string> = {}) => ({
      SPIKE_SVID_DIR: ids[role],
      SPIKE_NEXUS_API_URL: `https://127.0.0.1:${port}`,
      SPIKE_PILOT_RECOVERY_DIR: recoveryDir,
      ...extra,
    });
    const as = (role: Role, args: string[], stdin?: string | Uint8Array) =>
      runSpike(args, { env: env(role), ...(stdin === undefined ? {} : { stdin }) });

    const rootKey = generateRootKey(systemRandom);
    const shares = splitSecret(rootKey, 3, 2);

    await t.step("operator restore hands Nexus its root key, one shard at a time", async () => {
      const [notReady, first] = await Promise.all([
        as("superuser", ["secret", "list"]),
        as("restore", ["operator", "restore"], formatRecoveryShard(1, shares[0]!.value) + "\n"),
      ]);
      exits(notReady, 1, "secret list before the key");
      assert.match(notReady.stderr, /not ready/);
      exits(first, 0, "restore shard 1");
      assert.match(first.stdout, /shards collected: 1, remaining: 1/);
      // A line that is not a shard, and a shard sent by the wrong role.
      const [garbage, refused, wrongRole] = await Promise.all([
        as("restore", ["operator", "restore"], "spike:2:nothex\n"),
        as("restore", ["operator", "restore"], `spike:2:${"ff".repeat(32)}\n`),
        as("superuser", ["operator", "restore"], formatRecoveryShard(3, shares[2]!.value) + "\n"),
      ]);
      exits(refused, 1, "restore with a shard Nexus refuses");
      assert.match(refused.stderr, /refused the shard/);
      exits(garbage, 1, "restore with a malformed shard");
      assert.match(garbage.stderr, /spike:<index>:<64 hex characters>/);
      assert.ok(!garbage.stderr.includes("nothex"), "the input is not echoed");
      exits(wrongRole, 1, "restore as superuser");
      assert.match(wrongRole.stderr, /not authorized/);
      const second = exits(
        await as("restore", ["operator", "restore"], formatRecoveryShard(3, shares[2]!.value) + "\n"),
        0,
        "restore shard 3",
      );
      assert.match(second.stdout, /restored/);
      await waitForReady(port, 10_000);
      // Nexus holds its key now: a shard is checked against it, not collected.
      const [belongs, foreign] = await Promise.all([
        as("restore", ["operator", "restore"], formatRecoveryShard(2, shares[1]!.value) + "\n"),
        as("restore", ["operator", "restore"], formatRecoveryShard(2, shares[0]!.value) + "\n"),
      ]);
      assert.match(exits(belongs, 0, "restore a shard of the held key").stdout, /already holds its root key/);
      exits(foreign, 1, "restore a shard that is not of the held key");
      assert.match(foreign.stderr, /refused the shard/);
    });

    await t.step("secret put, get (formats, key, version), delete, undelete, list, metadata", async () => {
      const certFile = join(dir, "cert.pem");
      await Deno.writeTextFile(certFile, "-----BEGIN X-----\nline two\n");
      const put1 = exits(
        await as(
          "superuser",
          ["secret", "put", "app/db", "user=admin", "--from-file", `cert=${certFile}`, "--from-stdin", "pass"],
          "s3cret from stdin\n",
        ),
        0,
        "put v1",
      );
      assert.match(put1.stderr, /OK/);
      assert.equal(put1.stdout, "", "data on stdout only");
      const [put2, putOther] = await Promise.all([
        as("superuser", ["secret", "put", "app/db", "user=root", "pass=two=with=equals"]),
        as("superuser", ["secret", "put", "app/other", "k=v"]),
      ]);
      exits(put2, 0, "put v2");
      exits(putOther, 0, "put other");

      const [human, json, yaml, single, v1, list, meta, ...missing] = await Promise.all([
        as("superuser", ["secret", "get", "app/db"]),
        as("superuser", ["secret", "get", "app/db", "-f", "json"]),
        as("superuser", ["secret", "get", "app/db", "--format", "yaml"]),
        as("superuser", ["secret", "get", "app/db", "pass"]),
        as("superuser", ["secret", "get", "app/db", "-v", "1", "-f", "json"]),
        as("superuser", ["secret", "list"]),
        as("superuser", ["secret", "metadata", "get", "app/db"]),
        // Not found: a missing secret, and a missing key (one named like an Object member).
        as("superuser", ["secret", "get", "app/missing"]),
        as("superuser", ["secret", "get", "app/db", "toString"]),
      ]);
      assert.equal(exits(human, 0, "get").stdout, "pass: two=with=equals\nuser: root\n");
      assert.deepEqual(JSON.parse(exits(json, 0, "get -f json").stdout), { user: "root", pass: "two=with=equals" });
      assert.deepEqual(parseYaml(exits(yaml, 0, "get -f yaml").stdout), { user: "root", pass: "two=with=equals" });
      // Piped, a value alone is its exact bytes: no newline is added.
      assert.equal(exits(single, 0, "get key").stdout, "two=with=equals");
      // --from-file keeps the file as is; --from-stdin drops the one trailing newline.
      assert.deepEqual(JSON.parse(exits(v1, 0, "get -v 1").stdout), {
        user: "admin",
        cert: "-----BEGIN X-----\nline two\n",
        pass: "s3cret from stdin",
      });
      assert.equal(exits(list, 0, "list").stdout, "app/db\napp/other\n");
      const metadata = parseYaml(exits(meta, 0, "metadata get").stdout);
      assert.deepEqual(Object.keys(metadata.versions), ["1", "2"]);
      assert.equal(metadata.metadata.currentVersion, 2);
      for (const result of missing) {
        exits(result, 3, "not found");
        assert.match(result.stderr, /not found|is not in secret/);
        assert.equal(result.stdout, "");
      }

      exits(await as("superuser", ["secret", "delete", "app/db", "-v", "2"]), 0, "delete -v 2");
      const [afterDelete, metaJson, deletedVersion] = await Promise.all([
        as("superuser", ["secret", "get", "app/db", "user"]),
        as("superuser", ["secret", "metadata", "get", "app/db", "-f", "json"]),
        as("superuser", ["secret", "get", "app/db", "-v", "2"]),
      ]);
      assert.equal(exits(afterDelete, 0, "get after delete").stdout, "admin");
      const m = JSON.parse(exits(metaJson, 0, "metadata -f json").stdout);
      assert.equal(m.metadata.currentVersion, 1);
      assert.equal(typeof m.versions["2"].deletedTime, "string");
      exits(deletedVersion, 3, "get of a deleted version");
      // Without -v (or with -v 0) undelete names the current version, which is live: nothing to do.
      const [plainUndelete, zeroUndelete, deleteOther] = await Promise.all([
        as("superuser", ["secret", "undelete", "app/db"]),
        as("superuser", ["secret", "undelete", "app/db", "-v", "0"]),
        as("superuser", ["secret", "delete", "app/other"]),
      ]);
      for (const [result, what] of [[plainUndelete, "undelete"], [zeroUndelete, "undelete -v 0"]] as const) {
        assert.match(exits(result, 3, what).stderr, /not found/);
      }
      exits(deleteOther, 0, "delete the only version of app/other");
      exits(await as("superuser", ["secret", "undelete", "app/db", "-v", "2"]), 0, "undelete");
      // app/other has no live version: listed, and its metadata says so.
      const [listed, otherMeta] = await Promise.all([
        as("superuser", ["secret", "list"]),
        as("superuser", ["secret", "metadata", "get", "app/other", "-f", "json"]),
      ]);
      assert.equal(exits(listed, 0, "list with a fully deleted path").stdout, "app/db\napp/other\n");
      const other = JSON.parse(exits(otherMeta, 0, "metadata of a fully deleted path").stdout);
      assert.equal(other.metadata.currentVersion, 0);
      assert.equal(typeof other.versions["1"].deletedTime, "string");
      exits(
        await as("superuser", ["secret", "undelete", "app/other"]),
        0,
        "undelete the newest of a fully deleted path",
      );
      // The next step reads app/db again and sees version 2 back ("root").
    });

    await t.step("policies: create, apply a file, list, get, delete (asking first)", async () => {
      const policyFile = join(dir, "ops.yaml");
      await Deno.writeTextFile(
        policyFile,
        "name: ops\nspiffeidPattern: '^spiffe://spike\\.ist/app/ops$'\npathPattern: '^ops/'\npermissions:\n  - read\n  - write\n",
      );
      const [denied, applied] = await Promise.all([
        as("outsider", ["secret", "get", "app/db", "user"]),
        as("superuser", ["policy", "apply", "--file", policyFile]),
      ]);
      exits(denied, 1, "outsider before policy");
      assert.match(denied.stderr, /not authorized/);
      exits(applied, 0, "policy apply");
      exits(
        await as("superuser", [
          "policy",
          "create",
          "--name",
          "outsider",
          "--spiffeid-pattern",
          "^spiffe://spike\\.ist/app/outsider$",
          "--path-pattern",
          "^app/db$",
          "--permissions",
          "read",
        ]),
        0,
        "policy create",
      );
      const refused = exits(await as("superuser", ["policy", "delete", "outsider"], "n\n"), 1, "delete answered n");
      assert.match(refused.stderr, /not deleted/);

      // Everything below also shows the refused delete kept the policy.
      const [list, listJson, get, getJson, allowed] = await Promise.all([
        as("superuser", ["policy", "list"]),
        as("superuser", ["policy", "list", "-f", "json"]),
        as("superuser", ["policy", "get", "outsider"]),
        as("superuser", ["policy", "get", "ops", "-f", "json"]),
        as("outsider", ["secret", "get", "app/db", "user"]),
      ]);
      assert.equal(exits(list, 0, "policy list").stdout, "ops\noutsider\n");
      assert.deepEqual(JSON.parse(exits(listJson, 0, "policy list -f json").stdout), [
        { id: "ops", name: "ops" },
        { id: "outsider", name: "outsider" },
      ]);
      assert.match(exits(get, 0, "policy get").stdout, /path pattern: +\^app\/db\$\n/);
      const ops = JSON.parse(exits(getJson, 0, "policy get -f json").stdout);
      assert.equal(ops.spiffiedPattern, "^spiffe://spike\\.ist/app/ops$");
      assert.deepEqual(ops.permissions, ["read", "write"]);
      assert.equal(exits(allowed, 0, "outsider with policy (and version 2 undeleted)").stdout, "root");

      // create refuses a name that exists (apply is the upsert); get's output applies back as is,
      // and SPIKE's older keys and flags still work.
      const [again, opsYaml, badId, neverMatches] = await Promise.all([
        as("superuser", [
          "policy",
          "create",
          "--name",
          "outsider",
          "--spiffeid-pattern",
          "^spiffe://spike\\.ist/app/other$",
          "--path-pattern",
          "^app/",
          "--permissions",
          "super",
        ]),
        as("superuser", ["policy", "get", "ops", "-f", "yaml"]),
        as("superuser", [
          "policy",
          "create",
          "--name",
          "all",
          "--spiffeid",
          ".*",
          "--path",
          ".*",
          "--permissions",
          "read",
        ]),
        as("superuser", [
          "policy",
          "apply",
          "--name",
          "x",
          "--spiffeid-pattern",
          "^x$",
          "--path-pattern",
          "^a$",
          "--permissions",
          "read",
        ]),
      ]);
      exits(again, 1, "policy create of an existing name");
      assert.match(again.stderr, /policy 'outsider' already exists; use 'spike policy apply'/);
      for (const [result, what] of [[badId, ".*"], [neverMatches, "^x$"]] as const) {
        exits(result, 1, `SPIFFE ID pattern ${what}`);
        assert.match(result.stderr, /refused the policy.*spiffe:\/\//, what);
      }
      // get -f yaml under another name, get -f json with fewer permissions, an older SPIKE file.
      const copyFile = join(dir, "ops-copy.yaml");
      const lessFile = join(dir, "ops-less.json");
      const oldFile = join(dir, "old.yaml");
      const yamlText = exits(opsYaml, 0, "policy get -f yaml").stdout;
      assert.match(yamlText, /^spiffiedPattern: /m);
      await Deno.writeTextFile(copyFile, yamlText.replace(/^name: ops$/m, "name: ops-copy"));
      await Deno.writeTextFile(lessFile, JSON.stringify({ ...ops, permissions: ["read"] }, null, 2));
      await Deno.writeTextFile(
        oldFile,
        "name: old\nspiffeid: '^spiffe://spike\\.ist/app/old$'\npath: '^old/'\npermissions: [list]\n",
      );
      const written = await Promise.all([
        as("superuser", ["policy", "apply", "-f", copyFile]),
        as("superuser", ["policy", "apply", "--file", lessFile]),
        as("superuser", ["policy", "apply", "-f", oldFile]),
        as("superuser", [
          "policy",
          "create",
          "--name",
          "flags",
          "--spiffeid",
          "^spiffe://spike\\.ist/app/flags$",
          "--path",
          "^flags/",
          "--permissions",
          "read",
        ]),
      ]);
      written.forEach((result, i) => exits(result, 0, `apply/create #${i}`));
      const [copy, less, old, flags, outsider] = (await Promise.all(
        ["ops-copy", "ops", "old", "flags", "outsider"].map((name) =>
          as("superuser", ["policy", "get", name, "-f", "json"])
        ),
      )).map((result) => JSON.parse(exits(result, 0, "policy get").stdout));
      const shape = (p: Record<string, unknown>) => [p.spiffiedPattern, p.pathPattern, p.permissions];
      assert.deepEqual(shape(copy), [ops.spiffiedPattern, ops.pathPattern, ops.permissions]);
      assert.deepEqual(shape(less), [ops.spiffiedPattern, ops.pathPattern, ["read"]]);
      assert.deepEqual(shape(old), ["^spiffe://spike\\.ist/app/old$", "^old/", ["list"]]);
      assert.deepEqual(shape(flags), ["^spiffe://spike\\.ist/app/flags$", "^flags/", ["read"]]);
      assert.deepEqual(
        shape(outsider),
        ["^spiffe://spike\\.ist/app/outsider$", "^app/db$", ["read"]],
        "create changed nothing",
      );
      await Promise.all(
        ["ops-copy", "old", "flags"].map(async (name) =>
          exits(await as("superuser", ["policy", "delete", name, "--yes"]), 0, `delete ${name}`)
        ),
      );

      exits(await as("superuser", ["policy", "delete", "outsider", "--yes"]), 0, "policy delete --yes");
      const [gone, deniedAgain, badRegex] = await Promise.all([
        as("superuser", ["policy", "get", "outsider"]),
        as("outsider", ["secret", "get", "app/db", "user"]),
        as("superuser", [
          "policy",
          "create",
          "--name",
          "bad",
          "--spiffeid-pattern",
          "(a)\\1",
          "--path-pattern",
          "^x$",
          "--permissions",
          "read",
        ]),
      ]);
      exits(gone, 3, "policy get after delete");
      exits(deniedAgain, 1, "outsider after delete");
      exits(badRegex, 1, "policy with a backreference");
      assert.match(badRegex.stderr, /refused the policy.*linear time/);
    });

    await t.step("cipher: stdin/stdout, files, and the JSON mode", async () => {
      const plaintext = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7 + 1) & 0xff);
      const inFile = join(dir, "plain.bin");
      const sealedFile = join(dir, "sealed.bin");
      const outFile = join(dir, "opened.bin");
      await Deno.writeFile(inFile, plaintext);
      const [sealed, fileEncrypt, envelope] = await Promise.all([
        as("superuser", ["cipher", "encrypt"], plaintext),
        as("superuser", ["cipher", "encrypt", "-f", inFile, "-o", sealedFile]),
        as("superuser", ["cipher", "encrypt", "--json"], "json text"),
      ]);
      exits(sealed, 0, "encrypt stdin");
      assert.equal(sealed.stdoutBytes[0], 1);
      assert.equal(sealed.stdoutBytes.length, 1 + 12 + plaintext.length + 16);
      exits(fileEncrypt, 0, "encrypt -f -o");
      assert.equal(fileEncrypt.stdout, "");
      const parsedEnvelope = JSON.parse(exits(envelope, 0, "encrypt --json").stdout);
      assert.equal(parsedEnvelope.version, 1);
      assert.equal(atob(parsedEnvelope.nonce).length, 12);

      const tampered = sealed.stdoutBytes.slice();
      tampered[20]! ^= 1;
      const [opened, fileDecrypt, jsonOpened, bad] = await Promise.all([
        as("superuser", ["cipher", "decrypt"], sealed.stdoutBytes),
        as("superuser", ["cipher", "decrypt", "-f", sealedFile, "-o", outFile]),
        as("superuser", ["cipher", "decrypt", "--json"], envelope.stdout),
        as("superuser", ["cipher", "decrypt"], tampered),
      ]);
      assert.deepEqual(exits(opened, 0, "decrypt stdin").stdoutBytes, plaintext);
      exits(fileDecrypt, 0, "decrypt -f -o");
      assert.deepEqual(await Deno.readFile(outFile), plaintext);
      assert.equal((await Deno.stat(outFile)).mode! & 0o777, 0o600);
      assert.equal(exits(jsonOpened, 0, "decrypt --json").stdout, "json text");
      exits(bad, 1, "decrypt tampered");
      assert.match(bad.stderr, /invalid/);
      assert.equal(bad.stdout, "");
    });

    await t.step("operator recover writes spike.recovery.<i>.txt, mode 0600, holding the shards", async () => {
      const [recovered, denied] = await Promise.all([
        as("recover", ["operator", "recover"]),
        as("superuser", ["operator", "recover"]),
      ]);
      exits(recovered, 0, "recover");
      exits(denied, 1, "recover as superuser");
      assert.match(denied.stderr, /not authorized/);
      const names = [...Deno.readDirSync(recoveryDir)].map((e) => e.name).sort();
      assert.deepEqual(names, ["spike.recovery.1.txt", "spike.recovery.2.txt", "spike.recovery.3.txt"]);
      for (const share of shares) {
        const file = join(recoveryDir, `spike.recovery.${share.index}.txt`);
        assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600, file);
        const text = await Deno.readTextFile(file);
        const parsed = parseRecoveryFile(text);
        assert.equal(parsed.index, share.index);
        assert.deepEqual(parsed.shard, share.value);
        assert.equal(parsed.keyVersion, 1, "the file names its root key version");
        // SPIKE's format on the first line, so one-line readers still get the shard.
        assert.deepEqual(parseRecoveryShard(text.split("\n")[0]!), { index: share.index, shard: share.value });
      }
      assert.ok(!recovered.stdout.includes(formatRecoveryShard(1, shares[0]!.value)), "shards stay off stdout");
    });

    await t.step("usage errors exit 2, --help exits 0, Nexus down is a clear error", async () => {
      // More usage-error cases run in-process in lib/cli/command_test.ts.
      const [unknownFlag, badVersion, help, version, down] = await Promise.all([
        as("superuser", ["secret", "get", "app/db", "--bogus"]),
        as("superuser", ["secret", "get", "app/db", "-v", "x"]),
        as("superuser", ["secret", "put", "--help"]),
        runSpike(["--version"]),
        runSpike(["secret", "list"], {
          env: env("superuser", { SPIKE_NEXUS_API_URL: `https://127.0.0.1:${freePort()}` }),
        }),
      ]);
      for (const [result, what] of [[unknownFlag, "unknown flag"], [badVersion, "bad version"]] as const) {
        exits(result, 2, what);
        assert.match(result.stderr, /Usage: spike secret get/, what);
        assert.equal(result.stdout, "", what);
      }
      assert.match(exits(help, 0, "--help").stdout, /Usage: spike secret put/);
      assert.match(exits(version, 0, "--version").stdout, /^spike \d+\.\d+\.\d+ \(SPIKE v1 API; deno /);
      assert.equal(help.stderr, "");
      assert.notEqual(down.code, 0);
      assert.match(down.stderr, /connection refused/);
    });

    await t.step("the Nexus process wrote an audit record per API call on stdout, holding no secret", () => {
      const audit = nexus!.output.split("\n").filter((line) => line.includes('"type":"audit"')).map((l) =>
        JSON.parse(l)
      );
      const puts = audit.filter((r) => r.route === "/v1/store/secrets" && r.action === "" && r.outcome === "ok");
      assert.ok(puts.length >= 3, "the puts are there");
      assert.ok(puts.every((r) => r.spiffeId === ROLES.superuser && r.permissions[0] === "write"));
      assert.ok(audit.some((r) => r.spiffeId === ROLES.restore && r.route === "/v1/operator/restore"));
      const text = JSON.stringify(audit);
      for (const secret of ["s3cret from stdin", "two=with=equals", "line two"]) assert.ok(!text.includes(secret));
    });
  } finally {
    await nexus?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
