/**
 * The tamper-evident audit trail on a real `spike nexus` (SQLite, mTLS,
 * restored by `spike operator restore`): records written before the root
 * key are chained without a key and covered by the first keyed record;
 * rotation (SIGHUP) starts a segment linked to the old file; `spike audit
 * verify` checks the files through Nexus (the key stays there), offline with
 * the recovery shards, or without a key, and names the first edited,
 * missing, reordered or forged record of a tampered copy. No secret value
 * or shard ever reaches a record.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ChainFields, linkOf, parseChainedLine, sealLine, sealRecord } from "../lib/audit/chain_format.ts";
import { zeroize } from "../lib/crypto/zeroize.ts";
import { deriveAuditKey } from "../lib/nexus/audit_key.ts";
import { rootKeyFromRecoveryDir } from "../lib/pilot/recovery_key.ts";
import { exits, type RestoredNexus, startRestoredNexus } from "./support/restored_nexus.ts";
import { runSpike } from "./support/process.ts";

const VALUE = "hunter2-audit-marker-5d1e";
const OTHER = "s3cr3t-audit-marker-a90c";

async function readLines(file: string): Promise<string[]> {
  return (await Deno.readTextFile(file)).trimEnd().split("\n");
}

/** The 1-based line and seq of the first line matching `pattern`. */
function find(lines: readonly string[], pattern: RegExp): { line: number; seq: number } {
  const index = lines.findIndex((line) => pattern.test(line));
  assert.ok(index >= 0, `no line matches ${pattern}`);
  return { line: index + 1, seq: JSON.parse(lines[index]!).seq };
}

Deno.test("audit chain on a real Nexus: verified through Nexus, offline and unkeyed; tampering is named", async () => {
  let nexus: RestoredNexus | undefined;
  try {
    nexus = await startRestoredNexus("spike_audit_chain_", {
      nexusEnv: (dir) => ({ SPIKE_NEXUS_AUDIT_LOG: join(dir, "audit.log") }),
    });
    const file = join(nexus.dir, "audit.log");
    const rotated = `${file}.1`;
    exits(await nexus.admin(["secret", "put", "app/db", `pass=${VALUE}`]), 0, "put");
    exits(await nexus.admin(["secret", "get", "app/db"]), 0, "get");
    const recoverer = await nexus.mint("spike/pilot/role/recover");
    exits(await runSpike(["operator", "recover"], { env: nexus.env(recoverer) }), 0, "operator recover");

    // Rotation: move the file away, SIGHUP; the new file starts a linked segment.
    await Deno.rename(file, rotated);
    Deno.kill(nexus.process.pid, "SIGHUP");
    await nexus.process.waitFor(/audit log reopened/);
    exits(await nexus.admin(["secret", "put", "app/other", `key=${OTHER}`]), 0, "put after rotation");
    exits(await nexus.admin(["secret", "delete", "app/db"]), 0, "delete");

    const first = await readLines(rotated);
    const records = first.map((line) => JSON.parse(line));
    // Before the key: the start record and the first restore's record, unkeyed; then the key record.
    assert.deepEqual(records.slice(0, 2).map((r) => [r.event ?? r.type, r.keyVersion]), [["start", null], [
      "audit",
      null,
    ]]);
    assert.ok(records.some((r) => r.event === "key" && r.keyVersion === 1));
    assert.equal(records.at(-1).event, "reopen");
    assert.equal(JSON.parse((await readLines(file))[0]!).event, "segment");

    // Through Nexus, as the superuser: the key never leaves Nexus.
    const viaNexus = exits(await nexus.admin(["audit", "verify", rotated, file]), 0, "verify via Nexus");
    assert.match(viaNexus.stdout, /^OK \d+ records \(2 segments, 1 instance; MACs checked by Nexus\)\n$/);
    assert.match(viaNexus.stderr, /ends at record \d+ .* without a stop record: that Nexus was still running/);
    // Offline, with the root key rebuilt from the recovery files.
    const offline = exits(
      await runSpike(["audit", "verify", "--recovery-dir", join(nexus.dir, "recover"), rotated, file]),
      0,
      "verify offline",
    );
    assert.match(offline.stdout, /^OK \d+ records \(2 segments, 1 instance; MACs checked with the recovery shards\)/);
    const unkeyed = exits(await runSpike(["audit", "verify", "--unkeyed", rotated, file]), 0, "verify --unkeyed");
    assert.match(unkeyed.stdout, /MACs not checked \(--unkeyed\)/);
    // A workload may not use Nexus as a MAC oracle.
    const workload = await nexus.mint("app/web");
    const refused = await runSpike(["audit", "verify", rotated], { env: nexus.env(workload) });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /not authorized/);

    // No secret value and no shard in any record.
    const everything = (await Deno.readTextFile(rotated)) + (await Deno.readTextFile(file));
    for (const marker of [VALUE, OTHER, btoa(VALUE), btoa(OTHER)]) assert.ok(!everything.includes(marker), marker);
    for await (const entry of Deno.readDir(join(nexus.dir, "recover"))) {
      const text: string = await Deno.readTextFile(join(nexus.dir, "recover", entry.name));
      const hex = text.trim().split(":")[2]!;
      assert.ok(!everything.includes(hex), "a shard reached the trail");
    }

    // Tampered copies: each names the first bad record.
    const copy = join(nexus.dir, "copy.log");
    const verify = async (lines: string[], ...flags: string[]) => {
      await Deno.writeTextFile(copy, lines.join("\n") + "\n");
      return await nexus!.admin(["audit", "verify", ...flags, copy]);
    };
    const put = find(
      first,
      /"type":"audit","trail":"[^"]+","spiffeId":"[^"]+superuser","route":"\/v1\/store\/secrets","action":""/,
    );
    const edited = [...first];
    edited[put.line - 1] = edited[put.line - 1]!.replace('"status":200', '"status":401');
    const editedResult = exits(await verify(edited), 1, "edited");
    assert.equal(editedResult.stdout, `record ${put.seq} (line ${put.line} of ${copy}): edited (MAC mismatch)\n`);
    assert.equal(
      (await verify(edited, "--unkeyed")).stdout,
      `record ${put.seq} (line ${put.line} of ${copy}): edited (the link in the next record, line ${
        put.line + 1
      } of ${copy}, does not match it)\n`,
    );

    const deleted = first.filter((_, i) => i !== put.line - 1);
    assert.equal(
      exits(await verify(deleted), 1, "deleted").stdout,
      `missing record ${put.seq} (between line ${put.line - 1} of ${copy} and line ${put.line} of ${copy})\n`,
    );

    const swapped = [...first];
    [swapped[put.line - 1], swapped[put.line]] = [swapped[put.line]!, swapped[put.line - 1]!];
    assert.equal(
      exits(await verify(swapped), 1, "swapped").stdout,
      `record ${put.seq + 1} (line ${put.line} of ${copy}): reordered (record ${put.seq} comes after it, line ${
        put.line + 1
      } of ${copy})\n`,
    );

    // Without the key, a forger can only chain an unkeyed record after the last one.
    const last = parseChainedLine(first.at(-1)!);
    assert.ok(typeof last !== "string");
    const forged = sealLine(
      { ...JSON.parse(first[put.line - 1]!), status: 200, mac: undefined },
      { ...last.chain, seq: last.chain.seq + 1, keyVersion: null, prev: linkOf(first.at(-1)!) },
    );
    assert.equal(
      exits(await verify([...first, forged]), 1, "forged").stdout,
      `record ${last.chain.seq + 1} (line ${first.length + 1} of ${copy}): forged ` +
        "(a record without a key after the chain was keyed)\n",
    );

    // An upgrade in place: the file first holds what an older Nexus wrote under
    // the same root key, in chain format 1, then this Nexus's format-2 chain.
    const recovered = await rootKeyFromRecoveryDir(join(nexus.dir, "recover"));
    const oldKey = deriveAuditKey(recovered.rootKey, recovered.keyVersion);
    zeroize(recovered.rootKey);
    const old: string[] = [];
    let prev: string | null = null;
    const oldRecord = (fields: object, keyed: boolean) => {
      const chain: ChainFields = {
        format: 1,
        instance: "0ld0ld00-0000-4000-8000-000000000000",
        segment: 0,
        seq: old.length + 1,
        keyVersion: keyed ? recovered.keyVersion : null,
        prev,
      };
      const sealed = sealRecord(fields, chain, keyed ? oldKey : undefined);
      old.push(sealed.line);
      prev = sealed.link;
    };
    const time = "2026-11-01T00:00:00.000Z";
    oldRecord({ time, type: "audit-chain", event: "start", pid: 1 }, false);
    oldRecord({ time, type: "audit-chain", event: "key" }, true);
    // The put's record as the older Nexus wrote it: its own fields, none of the new chain's.
    const { format: _f, instance: _i, segment: _s, seq: _q, keyVersion: _k, prev: _p, mac: _m, ...putFields } = JSON
      .parse(first[put.line - 1]!);
    oldRecord(putFields, true);
    oldRecord({ time, type: "audit-chain", event: "stop" }, true);
    oldKey.destroy();
    assert.ok(!old.some((line) => line.includes('"format"')) && first.every((line) => line.includes('"format":2')));
    const upgraded = exits(await verify([...old, ...first]), 0, "format 1 then format 2, via Nexus").stdout;
    assert.match(upgraded, /^OK \d+ records \(2 segments, 2 instances; MACs checked by Nexus\)\n$/);
    await Deno.writeTextFile(copy, [...old, ...first].join("\n") + "\n");
    exits(
      await runSpike(["audit", "verify", "--recovery-dir", join(nexus.dir, "recover"), copy]),
      0,
      "format 1 then format 2, offline",
    );
    const oldEdited = [...old, ...first];
    oldEdited[2] = oldEdited[2]!.replace('"status":200', '"status":401');
    assert.equal(
      exits(await verify(oldEdited), 1, "an edit in the format-1 part").stdout,
      `record 3 of instance 0ld0ld00 (line 3 of ${copy}): edited (MAC mismatch)\n`,
    );

    // A clean stop writes the stop record: the chain then ends without a note.
    await nexus.process.stop();
    const stopped = exits(await runSpike(["audit", "verify", "--unkeyed", rotated, file]), 0, "after stop");
    assert.equal(JSON.parse((await readLines(file)).at(-1)!).event, "stop");
    assert.doesNotMatch(stopped.stderr, /without a stop record/);
  } finally {
    await nexus?.close();
  }
});

Deno.test("spike audit verify: usage errors exit 2, a missing file exits 3, nothing to check exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_audit_cli_" });
  try {
    const usage = await runSpike(["audit", "verify", "--unkeyed", "--recovery-dir", dir, "x"]);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--recovery-dir and --unkeyed exclude each other/);
    assert.equal((await runSpike(["audit", "verify"])).code, 2);
    const missing = await runSpike(["audit", "verify", "--unkeyed", join(dir, "nope.log")]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /nope\.log: no such file/);
    const empty = join(dir, "empty.log");
    await Deno.writeTextFile(empty, "");
    const nothing = await runSpike(["audit", "verify", "--unkeyed", empty]);
    assert.deepEqual([nothing.code, nothing.stdout], [1, "no audit records in the input\n"]);
    const noShards = await runSpike(["audit", "verify", "--recovery-dir", dir, empty]);
    assert.equal(noShards.code, 1);
    assert.match(noShards.stderr, /no spike\.recovery\.<i>\.txt files in/);
    const fromStdin = await runSpike(["audit", "verify", "--unkeyed", "-"], { stdin: '{"type":"audit"}\n' });
    assert.deepEqual(
      [fromStdin.code, fromStdin.stdout],
      [1, 'line 1 of -: not a chained audit record (it does not end with a "mac" field)\n'],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
