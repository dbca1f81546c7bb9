/**
 * `/v1/operator/audit/verify` [ours]: checks the MACs of audit records for
 * `spike audit verify`, so the audit key never leaves Nexus. The CLI checks
 * order and links itself and sends the keyed lines here in batches; the
 * answer says, line by line, `ok`, `mismatch`, `unknown_key` (no key of that
 * version here), `unkeyed` (written before the key; the CLI hashes those) or
 * `malformed`. Pilot superuser only: a MAC check is an oracle, and only the
 * operator needs one. Comparisons are constant-time, so timing tells nothing
 * about how close a forged MAC came.
 *
 * @module
 */
import { badRequest } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { parseJsonBody } from "../../api/body.ts";
import { type AuditMacKey, macMatches, MAX_RECORD_LINE, parseChainedLine } from "../../audit/chain_format.ts";
import { rootKeyAuditKeys } from "../audit_key.ts";
import type { Route } from "../route.ts";

/** Most lines one call may carry. */
export const MAX_VERIFY_BATCH = 1000;

/** What Nexus says about one line. */
export type LineVerdict = "ok" | "mismatch" | "unknown_key" | "unkeyed" | "malformed";

/** The audit routes. */
export const auditRoutes: readonly Route[] = [
  {
    path: PATHS.auditVerify,
    action: "",
    needsRootKey: true,
    admit: (caller) => caller.superuser,
    handle(input) {
      const records = v.object(parseJsonBody(input.body)).records;
      if (!Array.isArray(records) || records.length === 0 || records.length > MAX_VERIFY_BATCH) {
        throw badRequest(`records must be a list of 1 to ${MAX_VERIFY_BATCH} lines`);
      }
      if (!records.every((line) => typeof line === "string" && line.length <= MAX_RECORD_LINE)) {
        throw badRequest(`every record must be a string of at most ${MAX_RECORD_LINE} characters`);
      }
      const source = rootKeyAuditKeys(input.deps.keys);
      const keys = new Map<number, AuditMacKey | undefined>();
      try {
        const results = (records as string[]).map((line): LineVerdict => {
          const record = parseChainedLine(line);
          if (typeof record === "string") return "malformed";
          const version = record.chain.keyVersion;
          if (version === null) return "unkeyed";
          if (!keys.has(version)) keys.set(version, source.key(version));
          const key = keys.get(version);
          if (!key) return "unknown_key";
          return macMatches(key, record) ? "ok" : "mismatch";
        });
        return Promise.resolve({ results });
      } finally {
        for (const key of keys.values()) key?.destroy();
      }
    },
  },
];
