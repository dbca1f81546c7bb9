import assert from "node:assert/strict";
import { deriveAuditKey } from "../nexus/audit_key.ts";
import { AuditChain } from "../nexus/audit_chain.ts";
import { testRootKey } from "../nexus/testing.ts";
import { type ChainFields, linkOf, parseChainedLine, sealLine, sealRecord } from "./chain_format.ts";
import type { VerifyReport } from "./verifier.ts";
import { type InputLine, localMacChecker, type MacChecker, noMacChecker, verifyLines } from "./verify_run.ts";

const KEY = () => deriveAuditKey(testRootKey(), 1);

function request(n: number, status = 200): Record<string, unknown> {
  return {
    time: "2026-01-02T03:04:05.000Z",
    type: "audit",
    trail: `trail-${n}`,
    spiffeId: "spiffe://spike.ist/app/web",
    route: "/v1/store/secrets",
    action: "get",
    resource: "app/db",
    permissions: ["read"],
    status,
    err: null,
    outcome: status === 200 ? "ok" : "denied",
    durationMs: 0.5,
  };
}

const event = (name: string, extra: Record<string, unknown> = {}) => ({
  time: "2026-01-02T03:04:05.000Z",
  type: "audit-chain",
  event: name,
  ...extra,
});

/**
 * A chain as Nexus writes it: start, `unkeyed` records before the key, the
 * key record, `keyed` records, stop. Lines 1.. in order.
 */
function trail(options: { unkeyed?: number; keyed?: number; stop?: boolean; instance?: string } = {}): string[] {
  const chain = new AuditChain(options.instance ?? "11111111-2222-3333-4444-555555555555");
  const lines = [chain.seal(event("start", { pid: 1 })).line];
  let n = 0;
  for (let i = 0; i < (options.unkeyed ?? 2); i++) lines.push(chain.seal(request(++n, 503)).line);
  chain.useKey(KEY());
  lines.push(chain.seal(event("key")).line);
  for (let i = 0; i < (options.keyed ?? 5); i++) lines.push(chain.seal(request(++n)).line);
  if (options.stop ?? true) lines.push(chain.seal(event("stop")).line);
  return lines;
}

/**
 * The same trail in chain format 1, as Nexus wrote it before format 2 (its
 * writer no longer exists, so it is sealed here record by record).
 */
function formatOneTrail(instance = "99999999-2222-3333-4444-555555555555"): string[] {
  const key = KEY();
  const lines: string[] = [];
  let prev: string | null = null;
  const add = (fields: object, keyed: boolean) => {
    const chain: ChainFields = {
      format: 1,
      instance,
      segment: 0,
      seq: lines.length + 1,
      keyVersion: keyed ? 1 : null,
      prev,
    };
    const sealed = sealRecord(fields, chain, keyed ? key : undefined);
    lines.push(sealed.line);
    prev = sealed.link;
  };
  add(event("start", { pid: 1 }), false);
  add(request(1, 503), false);
  add(event("key"), true);
  for (let n = 2; n < 6; n++) add(request(n), true);
  add(event("stop"), true);
  key.destroy();
  return lines;
}

async function* input(files: Record<string, readonly string[]>): AsyncGenerator<InputLine> {
  for (const [source, lines] of Object.entries(files)) {
    for (const [i, text] of lines.entries()) yield { source, line: i + 1, text };
  }
}

function check(
  files: Record<string, readonly string[]>,
  checker: MacChecker = localMacChecker([KEY()]),
  partial = false,
): Promise<VerifyReport> {
  return verifyLines(input(files), checker, { partial, chunk: { lines: 3 } });
}

/** Rewrites one field of a line in place, keeping its MAC (what an editor without the key can do). */
function edit(line: string, from: string, to: string): string {
  assert.ok(line.includes(from), `${from} in ${line}`);
  return line.replace(from, to);
}

Deno.test("verify: an intact chain is OK, unkeyed start included, counted by records, segments, instances", async () => {
  const report = await check({ "a.log": trail() });
  assert.deepEqual(report, { ok: true, records: 10, segments: 1, instances: 1, notes: [] });
});

Deno.test("verify: an edited record is named by its sequence number and line", async () => {
  const lines = trail();
  lines[5] = edit(lines[5]!, '"status":200', '"status":403');
  const report = await check({ "a.log": lines });
  assert.equal(report.finding?.kind, "edited");
  assert.equal(report.finding?.message, "record 6 (line 6 of a.log): edited (MAC mismatch)");
});

Deno.test("verify: deleted records are missing, with the lines around the hole", async () => {
  const one = trail();
  one.splice(5, 1);
  assert.equal(
    (await check({ "a.log": one })).finding?.message,
    "missing record 6 (between line 5 of a.log and line 6 of a.log)",
  );
  const three = trail();
  three.splice(4, 3);
  assert.equal(
    (await check({ "a.log": three })).finding?.message,
    "missing records 5..7 (between line 4 of a.log and line 5 of a.log)",
  );
});

Deno.test("verify: swapped records are reordered, not missing", async () => {
  const lines = trail();
  [lines[5], lines[6]] = [lines[6]!, lines[5]!];
  const report = await check({ "a.log": lines });
  assert.equal(report.finding?.kind, "reordered");
  assert.equal(
    report.finding?.message,
    "record 7 (line 6 of a.log): reordered (record 6 comes after it, line 7 of a.log)",
  );
});

Deno.test("verify: forged records: made up, unkeyed inside a keyed chain, after the stop; copies are duplicated", async () => {
  // A record an attacker wrote in place of record 6, with a MAC that is not Nexus's.
  const madeUp = trail();
  madeUp[5] = madeUp[5]!.replace(/"mac":"[0-9a-f]{64}"/, `"mac":"${"ab".repeat(32)}"`);
  assert.equal(
    (await check({ "a.log": madeUp })).finding?.message,
    "record 6 (line 6 of a.log): edited (MAC mismatch)",
  );

  // Without the key an attacker can only write unkeyed records; inside a keyed chain they are forged.
  const lines = trail({ stop: false });
  const last = parseChainedLine(lines.at(-1)!);
  assert.ok(typeof last !== "string");
  lines.push(
    sealLine(request(99), { ...last.chain, seq: last.chain.seq + 1, keyVersion: null, prev: linkOf(lines.at(-1)!) }),
  );
  assert.equal(
    (await check({ "a.log": lines })).finding?.message,
    "record 10 (line 10 of a.log): forged (a record without a key after the chain was keyed)",
  );

  const afterStop = trail();
  afterStop.push(afterStop[6]!);
  const report = await check({ "a.log": afterStop });
  assert.equal(report.finding?.kind, "forged");
  assert.match(report.finding!.message, /^record 7 \(line 11 of a\.log\): forged \(it follows the chain's stop record/);

  const copied = trail({ stop: false });
  copied.push(copied[4]!);
  assert.equal(
    (await check({ "a.log": copied })).finding?.message,
    "record 5 (line 10 of a.log): duplicated (the chain had already passed record 5)",
  );
});

Deno.test("verify --unkeyed: order and links catch edits and deletions, but not an attacker who relinks everything", async () => {
  const edited = trail();
  edited[5] = edit(edited[5]!, '"status":200', '"status":403');
  assert.equal(
    (await check({ "a.log": edited }, noMacChecker)).finding?.message,
    "record 6 (line 6 of a.log): edited (the link in the next record, line 7 of a.log, does not match it)",
  );
  const deleted = trail();
  deleted.splice(3, 1);
  assert.equal((await check({ "a.log": deleted }, noMacChecker)).finding?.kind, "missing");

  // Relinking: every later line gets a recomputed `prev` (its MAC cannot be recomputed without the key).
  const relinked = [...edited];
  for (let i = 6; i < relinked.length; i++) {
    relinked[i] = relinked[i]!.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${linkOf(relinked[i - 1]!)}"`);
  }
  assert.equal((await check({ "a.log": relinked }, noMacChecker)).ok, true, "the unkeyed check is fooled");
  assert.equal(
    (await check({ "a.log": relinked })).finding?.message,
    "record 6 (line 6 of a.log): edited (MAC mismatch)",
    "the MAC is not",
  );
});

Deno.test("verify: an unkeyed record edited and rehashed is caught by the keyed record after it", async () => {
  const lines = trail();
  const record = parseChainedLine(lines[1]!);
  assert.ok(typeof record !== "string");
  // The attacker rewrites record 2 and recomputes its plain SHA-256 "MAC".
  lines[1] = sealLine({ ...record.fields, status: 200 }, record.chain);
  const report = await check({ "a.log": lines });
  assert.equal(
    report.finding?.message,
    "record 2 (line 2 of a.log): edited (the link in the next record, line 3 of a.log, does not match it)",
  );
});

Deno.test("verify: records Nexus declared unwritten (a full disk) are not missing; the note says so", async () => {
  const chain = new AuditChain("99999999-2222-3333-4444-555555555555");
  chain.useKey(KEY());
  const lines = [chain.seal(event("start", { pid: 1 })).line, chain.seal(request(1)).line];
  chain.seal(request(2)); // never reached the file
  chain.seal(request(3));
  lines.push(chain.seal(request(4)).line);
  const error = "No space left on device (os error 28)";
  lines.push(chain.seal(event("lost", { sink: "file", seqs: [[3, 4]], error })).line);
  lines.push(chain.seal(event("stop")).line);
  const report = await check({ "a.log": lines });
  assert.equal(report.ok, true, report.finding?.message ?? "");
  assert.deepEqual(report.notes, [
    `the chain: Nexus declared 2 record(s) unwritten to its file (last error: ${error}); they are not counted as missing`,
  ]);
  // A declaration covers only what it names.
  const short = [...lines];
  short.splice(1, 1);
  assert.equal((await check({ "a.log": short })).finding?.kind, "missing");
});

Deno.test("verify: a rotated trail checks across its files; either file alone checks too, with a note", async () => {
  const chain = new AuditChain("22222222-2222-3333-4444-555555555555");
  chain.useKey(KEY());
  const first = [chain.seal(event("start", { pid: 1 })).line, chain.seal(request(1)).line];
  first.push(chain.seal(event("reopen")).line);
  chain.nextSegment();
  const second = [chain.seal(event("segment")).line, chain.seal(request(2)).line, chain.seal(event("stop")).line];
  const both = await check({ "audit.log.1": first, "audit.log": second });
  assert.deepEqual([both.ok, both.records, both.segments, both.notes], [true, 6, 2, []]);
  assert.equal((await check({ "audit.log.1": first })).ok, true);
  const alone = await check({ "audit.log": second });
  assert.equal(alone.ok, true);
  assert.match(alone.notes[0]!, /starts at record 4 \(line 1 of audit\.log\), the first of segment 1/);
  // Files given in the wrong order: the older file's records come after the stop record.
  assert.equal((await check({ "audit.log": second, "audit.log.1": first })).finding?.kind, "forged");
  // The segment record is gone: the new file starts inside the chain.
  assert.equal((await check({ "audit.log": second.slice(1) })).finding?.kind, "missing");
});

Deno.test("verify: an excerpt is missing its start unless --partial; key versions the verifier lacks are unverifiable", async () => {
  const lines = trail().slice(4);
  assert.match(
    (await check({ "x.log": lines })).finding!.message,
    /^missing records before record 5 \(line 1 of x\.log\): the chain starts there without its start or segment/,
  );
  const partial = await check({ "x.log": lines }, undefined, true);
  assert.equal(partial.ok, true);
  assert.match(partial.notes[0]!, /starts at record 5 .*--partial/);

  const noKey = await check({ "a.log": trail() }, localMacChecker([]));
  assert.equal(noKey.finding?.kind, "unverifiable");
  assert.match(noKey.finding!.message, /key version 1 is not available/);
});

Deno.test("verify: lines that are not chained records; interleaved instances; notes for unkeyed tails and no stop", async () => {
  const legacy = '{"time":"2026-01-02T03:04:05.000Z","type":"audit","trail":"x","status":200}';
  assert.equal(
    (await check({ "a.log": [legacy, ...trail()] })).finding?.message,
    'line 1 of a.log: not a chained audit record (it does not end with a "mac" field)',
  );
  const a = trail({ instance: "aaaaaaaa-0000-0000-0000-000000000000" });
  const b = trail({ instance: "bbbbbbbb-0000-0000-0000-000000000000", stop: false });
  const mixed = a.flatMap((line, i) => b[i] ? [line, b[i]!] : [line]);
  const report = await check({ "both.log": mixed });
  assert.deepEqual([report.ok, report.instances, report.records], [true, 2, 19]);
  assert.match(report.notes.join("\n"), /instance bbbbbbbb: ends at record 9 .* without a stop record/);
  // Instance names appear in findings once several are in play.
  mixed[0] = edit(mixed[0]!, '"pid":1', '"pid":2');
  assert.match((await check({ "both.log": mixed })).finding?.message ?? "", / of instance /);

  const unkeyedOnly = new AuditChain("cccccccc-0000-0000-0000-000000000000");
  const early = [unkeyedOnly.seal(event("start", { pid: 1 })).line, unkeyedOnly.seal(request(1, 503)).line];
  const note = (await check({ "a.log": early })).notes.join("\n");
  assert.match(note, /records 1\.\.2 were written before the root key was loaded and no keyed record follows them/);
});

Deno.test("verify: the wrong key fails the first keyed record", async () => {
  const other = deriveAuditKey(Uint8Array.from({ length: 32 }, (_, i) => i + 1), 1);
  const report = await check({ "a.log": trail() }, localMacChecker([other]));
  assert.equal(report.finding?.message, "record 4 (line 4 of a.log): edited (MAC mismatch)");
});

Deno.test("verify: multi-path records (move, batch read: resources) and the sweep's records verify; edits to their lists are caught", async () => {
  const chain = new AuditChain("11111111-2222-3333-4444-555555555555");
  chain.useKey(KEY());
  const resources = [
    { path: "app/from", permissions: ["read", "write"], outcome: "ok" },
    { path: 'app/"quoted" \\ päth', permissions: ["write"], outcome: "ok" },
  ];
  const move = { ...request(1), action: "move", resource: "app/from", permissions: ["read", "write"], resources };
  const intent = {
    time: "2026-01-02T03:04:05.000Z",
    type: "audit-intent",
    trail: "trail-1",
    spiffeId: "spiffe://spike.ist/app/web",
    route: "/v1/store/secrets",
    action: "move",
    resource: "app/from",
    permissions: ["read", "write"],
    resources,
  };
  const batch = {
    ...request(2),
    action: "getMany",
    resource: null,
    resources: [{ path: "a", permissions: ["read"], outcome: "ok" }, {
      path: "b",
      permissions: ["read"],
      outcome: "denied",
    }],
  };
  const sweep = { time: "2026-01-02T03:04:05.000Z", type: "audit-sweep", trail: "trail-3", phase: "intent" };
  const lines = [
    chain.seal(event("start", { pid: 1 })).line,
    chain.seal(intent).line,
    chain.seal(move).line,
    chain.seal(batch).line,
    chain.seal({ ...sweep, paths: ["x/1", "x/2"] }).line,
    chain.seal({ ...sweep, phase: "done", removed: ["x/1"], destroyed: [{ path: "x/2", versions: [3] }], skipped: [] })
      .line,
    chain.seal(event("stop")).line,
  ];
  assert.deepEqual(await check({ "a.log": lines }), { ok: true, records: 7, segments: 1, instances: 1, notes: [] });
  assert.deepEqual(
    (parseChainedLine(lines[2]!) as { fields: Record<string, unknown> }).fields.resources,
    resources,
    "the list round-trips through the line",
  );

  for (
    const [index, from, to] of [
      [1, '"path":"app/from"', '"path":"app/other"'],
      [2, '"outcome":"ok"}]', '"outcome":"denied"}]'],
      [3, '"outcome":"denied"', '"outcome":"ok"'],
      [4, '"x/2"]', '"x/3"]'],
      [5, '"versions":[3]', '"versions":[4]'],
    ] as const
  ) {
    const edited = [...lines];
    edited[index] = edit(edited[index]!, from, to);
    const report = await check({ "a.log": edited });
    assert.equal(report.finding?.message, `record ${index + 1} (line ${index + 1} of a.log): edited (MAC mismatch)`);
  }
});

Deno.test("verify: logs written in chain format 1 still verify, with and without the key, and edits still show", async () => {
  const old = formatOneTrail();
  assert.ok(!old.some((line) => line.includes('"format"')), "format 1 lines carry no format field");
  const report = await check({ "old.log": old });
  assert.deepEqual([report.ok, report.records, report.notes], [true, 8, []]);
  assert.equal((await check({ "old.log": old }, noMacChecker)).ok, true);

  const edited = [...old];
  edited[4] = edit(edited[4]!, '"status":200', '"status":403');
  assert.equal(
    (await check({ "old.log": edited })).finding?.message,
    "record 5 (line 5 of old.log): edited (MAC mismatch)",
  );
  assert.equal(
    (await check({ "old.log": edited }, noMacChecker)).finding?.message,
    "record 5 (line 5 of old.log): edited (the link in the next record, line 6 of old.log, does not match it)",
  );

  // An old file and a new one side by side: two instances, two formats, both intact.
  const both = await check({ "old.log": old, "new.log": trail() });
  assert.deepEqual([both.ok, both.instances], [true, 2]);
});

Deno.test("verify: a record in another chain format inside an instance's chain is forged", async () => {
  const lines = trail();
  const record = parseChainedLine(lines[5]!);
  assert.ok(typeof record !== "string");
  // Even sealed with the right key, seq and link: one Nexus process writes one format.
  const key = KEY();
  lines[5] = sealLine(request(3), { ...record.chain, format: 1 }, key);
  key.destroy();
  const report = await check({ "a.log": lines });
  assert.equal(
    report.finding?.message,
    "record 6 (line 6 of a.log): forged (chain format 1 in a chain of format 2; one Nexus process writes one format)",
  );
});
