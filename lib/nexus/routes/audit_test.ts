import assert from "node:assert/strict";
import { PATHS } from "../../api/paths.ts";
import { sealLine } from "../../audit/chain_format.ts";
import { deriveAuditKey } from "../audit_key.ts";
import { createTestNexus, peer, testRootKey } from "../testing.ts";

const TD = "spiffe://spike.ist";
const SUPERUSER = peer(`${TD}/spike/pilot/role/superuser`);
const CHAIN = { format: 2, instance: "i", segment: 0, seq: 1, keyVersion: 1, prev: null } as const;

Deno.test("audit verify route: a verdict per line, for the superuser only, with the key loaded", async () => {
  const good = sealLine({ type: "audit" }, CHAIN, deriveAuditKey(testRootKey(), 1));
  const other = sealLine({ type: "audit" }, CHAIN, deriveAuditKey(new Uint8Array(32).fill(9), 1));
  const lines = [
    good,
    good.replace('"type":"audit"', '"type":"audix"'),
    other,
    sealLine({ type: "audit" }, { ...CHAIN, keyVersion: null }),
    sealLine({ type: "audit" }, { ...CHAIN, keyVersion: 2 }, deriveAuditKey(testRootKey(), 2)),
    "not a record",
    // An older log (format 1) is checked by its own rule.
    sealLine({ type: "audit" }, { ...CHAIN, format: 1 }, deriveAuditKey(testRootKey(), 1)),
    sealLine({ type: "audit" }, { ...CHAIN, format: 1 }, deriveAuditKey(testRootKey(), 1)).replace("audit", "audix"),
  ];
  const nexus = await createTestNexus();
  const answer = await nexus.call(SUPERUSER, PATHS.auditVerify, "", { records: lines });
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, {
    results: ["ok", "mismatch", "mismatch", "unkeyed", "unknown_key", "malformed", "ok", "mismatch"],
  });

  for (const who of [`${TD}/app/web`, `${TD}/spike/pilot/role/recover`]) {
    assert.equal((await nexus.call(peer(who), PATHS.auditVerify, "", { records: [good] })).status, 401, who);
  }
  for (const body of [{}, { records: [] }, { records: [1] }, { records: Array(1001).fill(good) }]) {
    assert.equal((await nexus.call(SUPERUSER, PATHS.auditVerify, "", body)).status, 400);
  }
  const cold = await createTestNexus({ withKey: false });
  assert.equal((await cold.call(SUPERUSER, PATHS.auditVerify, "", { records: [good] })).status, 503);
});
