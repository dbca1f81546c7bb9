/**
 * What `spike audit verify` does (its flags and help are in `audit.ts`).
 *
 * @module
 */
import { type AuditMacKey, type ChainedRecord } from "../lib/audit/chain_format.ts";
import { type MacVerdict, type VerifyReport } from "../lib/audit/verifier.ts";
import {
  localMacChecker,
  type MacChecker,
  noMacChecker,
  readInputLines,
  verifyLines,
} from "../lib/audit/verify_run.ts";
import type { CommandContext } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import type { CliIo } from "../lib/cli/io.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import type { NexusClient } from "../lib/client/nexus_client.ts";
import { zeroize } from "../lib/crypto/zeroize.ts";
import { deriveAuditKey } from "../lib/nexus/audit_key.ts";
import { rootKeyFromRecoveryDir } from "../lib/pilot/recovery_key.ts";
import { withNexus } from "./pilot_session.ts";

/** Runs `spike audit verify` (see `audit.ts`). */
export async function runAuditVerify({ positionals, options, io }: CommandContext): Promise<number> {
  const recoveryDirs = (options["recovery-dir"] as string[] | undefined) ?? [];
  const unkeyed = options.unkeyed === true;
  if (recoveryDirs.length > 0 && unkeyed) {
    throw new UsageError("--recovery-dir and --unkeyed exclude each other");
  }
  if (positionals.filter((p) => p === "-").length > 1) {
    throw new UsageError("'-' (standard input) can be given once");
  }
  await requireFiles(positionals);
  const verify = (checker: MacChecker) =>
    verifyLines(readInputLines(positionals, () => io.stdinStream()), checker, {
      partial: options.partial === true,
    })
      .catch((error) => {
        throw new CliError(`cannot read the input: ${(error as Error).message}`);
      });
  if (unkeyed) return report(io, await verify(noMacChecker), "MACs not checked (--unkeyed)", undefined);
  if (recoveryDirs.length > 0) {
    const keys: AuditMacKey[] = [];
    try {
      for (const dir of recoveryDirs) {
        const key = await auditKeyFromRecovery(dir);
        keys.push(key);
        if (keys.some((k) => k !== key && k.version === key.version)) {
          throw new UsageError(`--recovery-dir: two directories hold root key version ${key.version}`);
        }
      }
      const checker = countingChecker(localMacChecker(keys));
      return report(io, await verify(checker), "MACs checked with the recovery shards", checker);
    } finally {
      for (const key of keys) key.destroy();
    }
  }
  return await withNexus(io, async ({ nexus }) => {
    const checker = countingChecker(nexusMacChecker(nexus));
    return report(io, await verify(checker), "MACs checked by Nexus", checker);
  });
}

/** Fails before any work when an input file is missing (exit 3) or unreadable. */
async function requireFiles(sources: readonly string[]): Promise<void> {
  for (const source of sources) {
    if (source === "-") continue;
    try {
      const info = await Deno.stat(source);
      if (!info.isFile) throw new CliError(`${source} is not a file`);
    } catch (error) {
      if (error instanceof CliError) throw error;
      if (error instanceof Deno.errors.NotFound) throw new CliError(`${source}: no such file`, 3);
      throw new CliError(`${source}: ${(error as Error).message}`);
    }
  }
}

/** Rebuilds the root key from the recovery files, derives the audit key, zeroes the root key. */
async function auditKeyFromRecovery(dir: string) {
  let root: Uint8Array | undefined;
  try {
    const recovered = await rootKeyFromRecoveryDir(dir);
    root = recovered.rootKey;
    return deriveAuditKey(root, recovered.keyVersion);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new CliError(`${dir}: no such directory`, 3);
    throw new CliError((error as Error).message);
  } finally {
    zeroize(root);
  }
}

/** A checker that counts the MACs it found good (to tell a wrong key from an edit). */
function countingChecker(inner: MacChecker): MacChecker & { readonly good: () => number } {
  let good = 0;
  return {
    good: () => good,
    async check(records) {
      const verdicts = await inner.check(records);
      good += verdicts.filter((v) => v === "ok").length;
      return verdicts;
    },
  };
}

/** Asks Nexus; a batch too large for its body limit is split in halves. */
function nexusMacChecker(nexus: NexusClient): MacChecker {
  const ask = async (
    records: ReadonlyArray<{ readonly line: string; readonly record: ChainedRecord }>,
  ): Promise<MacVerdict[]> => {
    try {
      const answers = await nexus.verifyAuditRecords(records.map((r) => r.line));
      return answers.map((answer) =>
        answer === "ok" || answer === "mismatch" || answer === "unknown_key" ? answer : "mismatch"
      );
    } catch (error) {
      if (error instanceof ApiCallError && error.status === 413 && records.length > 1) {
        const half = Math.ceil(records.length / 2);
        return [...await ask(records.slice(0, half)), ...await ask(records.slice(half))];
      }
      throw error;
    }
  };
  return { check: ask };
}

/** Prints the verdict (stdout) and notes (stderr); resolves the exit code. */
function report(io: CliIo, result: VerifyReport, how: string, checker: { good(): number } | undefined): number {
  for (const note of result.notes) io.stderr(`note: ${note}\n`);
  if (result.finding) {
    io.stdout(`${result.finding.message}\n`);
    const macFinding = result.finding.kind === "edited" || result.finding.kind === "forged";
    if (checker && macFinding && checker.good() === 0) {
      io.stderr(
        "note: no keyed record matched its MAC: if every record fails, the key is the wrong one " +
          "(recovery files of another deployment, or fewer than the threshold of them)\n",
      );
    }
    return 1;
  }
  if (result.records === 0) {
    io.stdout("no audit records in the input\n");
    return 1;
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  io.stdout(
    `OK ${plural(result.records, "record")} (${plural(result.segments, "segment")}, ` +
      `${plural(result.instances, "instance")}; ${how})\n`,
  );
  return 0;
}
