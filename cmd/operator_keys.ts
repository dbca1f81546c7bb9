/**
 * What `spike operator recover|restore|rotate|status` do (their flags and
 * help are in `operator.ts`): recovery shards in files that name their root
 * key version, a shard back to Nexus, a root key rotation followed to its
 * end, and the key status.
 *
 * @module
 */
import { ApiError } from "../lib/api/errors.ts";
import type { CommandContext } from "../lib/cli/command.ts";
import { CliError } from "../lib/cli/errors.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import type { CliIo } from "../lib/cli/io.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import type { NexusClient } from "../lib/client/nexus_client.ts";
import { zeroize } from "../lib/crypto/zeroize.ts";
import { formatRecoveryFile, formatRecoveryShard, parseRecoveryFile } from "../lib/pilot/recovery_file.ts";
import { withNexus } from "./pilot_session.ts";

/** How often `rotate` asks for progress while it waits. */
const POLL_MS = 2000;

/** Reads the shard: the whole of a piped file (its key version comment included), or one hidden line. */
async function readShardInput(io: CliIo): Promise<string> {
  if (io.stdinIsTerminal()) {
    const line = await io.readHiddenLine("Enter a recovery shard (input is hidden): ");
    return line ?? "";
  }
  const bytes = await io.readStdin();
  try {
    return new TextDecoder().decode(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** The key status fields `rotate` and `status` read. */
interface StatusView {
  readonly ready?: boolean;
  readonly rotation?: {
    readonly keyVersion?: number;
    readonly writeKeyVersion?: number | null;
    readonly heldKeyVersions?: number[];
    readonly phase?: string;
    readonly targetKeyVersion?: number | null;
    readonly startedAt?: string | null;
    readonly driver?: string | null;
    readonly toReseal?: number;
    readonly remaining?: number;
    readonly lastError?: string;
  };
  readonly retiredKeyVersions?: { version: number; retiredAt: string | null }[];
  readonly keepers?: { url: string; index: number; versioned?: boolean; versions: number[]; lastError?: string }[];
  readonly tamperedPolicies?: string[];
}

/** Runs `call`; a refusal Nexus gave a reason for becomes a CLI error with that reason (exit 1). */
async function reasonAsCliError<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiCallError && error.reason) throw new CliError(error.reason);
    throw error;
  }
}

/** Records a rotation has re-sealed so far (never shown below 0). */
function resealed(rotation: NonNullable<StatusView["rotation"]>): number {
  return Math.max(0, (rotation.toReseal ?? 0) - (rotation.remaining ?? 0));
}

/** The status as lines for a person. */
function describeStatus(status: StatusView): string {
  const r = status.rotation ?? {};
  const lines = [
    `root key version: ${r.keyVersion}` +
    (r.writeKeyVersion == null
      ? " (this Nexus holds no key yet)"
      : `; this Nexus seals new data under ${r.writeKeyVersion}, holds ${(r.heldKeyVersions ?? []).join(", ")}`),
  ];
  if (r.phase === "idle") lines.push("rotation: none in progress");
  else {
    lines.push(
      `rotation: ${r.phase} ${r.keyVersion} → ${r.targetKeyVersion}, started ${r.startedAt}` +
        (r.phase === "sealing" ? `; re-sealed ${resealed(r)} of ${r.toReseal} records` : "") +
        (r.driver ? `; driven by ${r.driver === "this" ? "this Nexus" : "another Nexus"}` : "; waiting for a driver"),
    );
  }
  if (r.lastError) lines.push(`last rotation attempt: ${r.lastError}`);
  const retired = status.retiredKeyVersions ?? [];
  lines.push(
    `retired versions: ${
      retired.length === 0 ? "none" : retired.map((x) => `${x.version} (${x.retiredAt ?? "date unknown"})`).join(", ")
    }`,
  );
  for (const keeper of status.keepers ?? []) {
    const kind = keeper.versioned === undefined
      ? "not heard from yet"
      : keeper.versioned
      ? `holds versions ${keeper.versions.join(", ") || "none"}`
      : "keeps one shard (no key versions)";
    lines.push(
      `keeper ${keeper.index} ${keeper.url}: ${kind}${keeper.lastError ? `; last push: ${keeper.lastError}` : ""}`,
    );
  }
  const tampered = status.tamperedPolicies ?? [];
  lines.push(`tampered policy rows: ${tampered.length === 0 ? "none" : tampered.join(", ")}`);
  return lines.join("\n") + "\n";
}

/** Follows a rotation to its end, printing progress on stderr. */
async function followRotation(io: CliIo, nexus: NexusClient, to: number): Promise<StatusView> {
  let last = "";
  while (true) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const status = await nexus.keyStatus() as StatusView;
    const r = status.rotation ?? {};
    if (r.phase === "idle") {
      if ((r.keyVersion ?? 0) >= to) return status;
      throw new CliError(`the rotation was given up: ${r.lastError ?? "see the Nexus log"}`);
    }
    const line = r.phase === "sealing"
      ? `re-sealing: ${resealed(r)} of ${r.toReseal} records`
      : "handing the new key to the Keepers";
    if (line !== last) io.stderr(`${line}\n`);
    last = line;
  }
}

/** Runs `spike operator recover`: every shard into `spike.recovery.<i>.txt`, with its key version. */
export async function runRecover({ io }: CommandContext): Promise<number> {
  await withNexus(io, async ({ nexus, config }) => {
    const { shards, keyVersion, threshold } = await reasonAsCliError(() => nexus.recoverWithVersion());
    try {
      await Deno.mkdir(config.recoveryDir, { recursive: true, mode: 0o700 });
      const writtenAt = new Date();
      for (const [index, shard] of [...shards].sort(([a], [b]) => a - b)) {
        const file = `${config.recoveryDir}/spike.recovery.${index}.txt`;
        // A Nexus that names no key version (SPIKE's) gets SPIKE's one-line file.
        const text = keyVersion === undefined
          ? `${formatRecoveryShard(index, shard)}\n`
          : formatRecoveryFile(index, shard, {
            keyVersion,
            shares: shards.size,
            threshold: threshold ?? shards.size,
            writtenAt,
          });
        await Deno.writeTextFile(file, text, { mode: 0o600 });
        // writeTextFile keeps the mode of an existing file; force it.
        await Deno.chmod(file, 0o600);
        io.stderr(`wrote ${file}\n`);
      }
      if (keyVersion !== undefined) io.stderr(`these shards rebuild root key version ${keyVersion}\n`);
    } finally {
      for (const shard of shards.values()) zeroize(shard);
    }
  });
  return 0;
}

/** Runs `spike operator restore`: one shard (a recovery file, or its line) to Nexus. */
export async function runRestore({ io }: CommandContext): Promise<number> {
  const input = await readShardInput(io);
  if (input.trim() === "") throw new CliError("no shard given on standard input");
  let parsed;
  try {
    parsed = parseRecoveryFile(input);
  } catch (error) {
    if (error instanceof ApiError) throw new CliError(error.message);
    throw error;
  }
  try {
    const progress = await withNexus(io, async ({ nexus }) => {
      try {
        return await nexus.restore(parsed.index, parsed.shard, parsed.keyVersion);
      } catch (error) {
        if (error instanceof ApiCallError && error.status === 400) {
          throw new CliError(
            `Nexus refused the shard: ${
              error.reason ??
                "it is not a valid shard, the shards sent so far do not rebuild the root key of its data " +
                  "(the collected shards were discarded; send them again), or Nexus already holds its root key " +
                  "and this shard is not one of it"
            }`,
          );
        }
        throw error;
      }
    });
    // Nexus that already held its key checks the shard and collects nothing.
    if (progress.restored && progress.collected === 0) {
      io.stdout("Nexus already holds its root key; this shard is one of it (nothing changed)\n");
    } else if (progress.restored) io.stdout("restored: Nexus has its root key again\n");
    else io.stdout(`shards collected: ${progress.collected}, remaining: ${progress.remaining}\n`);
  } finally {
    zeroize(parsed.shard);
  }
  return 0;
}

/** Runs `spike operator rotate`: starts a rotation and, unless `--no-wait`, follows it to its end. */
export async function runRotate({ io, options }: CommandContext): Promise<number> {
  await withNexus(io, async ({ nexus }) => {
    const started = await reasonAsCliError(() => nexus.rotate());
    io.stderr(`rotating the root key: version ${started.from} → ${started.to}\n`);
    if (options["no-wait"] === true) {
      io.stdout(`rotation to root key version ${started.to} started\n`);
      return;
    }
    await followRotation(io, nexus, started.to);
    io.stdout(
      `root key rotated: every record is sealed under version ${started.to}; version ${started.from} is retired.\n` +
        "Take new recovery files now: spike operator recover\n",
    );
  });
  return 0;
}

/** Runs `spike operator status`: root key versions, rotation, Keepers, tampered rows. */
export async function runKeyStatus({ io, options }: CommandContext): Promise<number> {
  const format = outputFormat(options.format);
  const status = await withNexus(io, ({ nexus }) => nexus.keyStatus());
  io.stdout(format === "human" ? describeStatus(status as StatusView) : await renderStructured(status, format));
  return 0;
}
