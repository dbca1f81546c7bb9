/**
 * `spike operator backup` and `spike operator restore-backup`: run on the
 * Nexus host (or anywhere that reaches its store), with Nexus's own store
 * settings (SPIKE_NEXUS_BACKEND_STORE, SPIKE_NEXUS_DATA_DIR,
 * SPIKE_NEXUS_POSTGRES_*) or `--data-dir` / `--postgres-url`. Loaded only
 * when one of them runs, so other commands do not pay for the store code.
 *
 * @module
 */
import type { CommandContext } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import { ConfigError } from "../lib/config/parse.ts";
import { resolveStoreConfig } from "../lib/config/spike_config.ts";
import { makeBackup, restoreBackup, type StoreLocation } from "../lib/backup/backup.ts";
import { BackupError, describeCounts } from "../lib/backup/format.ts";
import { manifestPathOf } from "../lib/backup/files.ts";
import { postgresStoreOptions } from "../lib/store/postgres_options.ts";
import { SPIKE_VERSION } from "../lib/version.ts";

/** `spike operator backup --out FILE`. */
export async function runBackup({ options, io }: CommandContext): Promise<number> {
  const out = options.out as string | undefined;
  if (!out) throw new UsageError("--out is required");
  const format = outputFormat(options.format);
  const source = storeLocation(options, io.env);
  const kind = options.kind ?? (source.kind === "sqlite" ? "sqlite" : "jsonl");
  if (kind !== "sqlite" && kind !== "jsonl") {
    throw new UsageError(`unknown backup kind '${String(kind)}' (use sqlite or jsonl)`);
  }
  const manifest = await failAsCli(() =>
    makeBackup({ source, out, kind, spikeVersion: SPIKE_VERSION, clock: () => new Date() })
  );
  if (format !== "human") io.stdout(await renderStructured(manifest, format));
  else {
    io.stdout(
      `backup written: ${out} (${kind}, from the ${manifest.source.store} store: ${describeCounts(manifest.counts)}; ` +
        `${manifest.keyCheck === null ? "no root key check value" : `root key version ${manifest.keyVersion}`}${
          manifest.rotatingTo === undefined ? "" : `, rotating to version ${manifest.rotatingTo}`
        })\n` +
        `manifest: ${manifestPathOf(out)}\n`,
    );
  }
  return 0;
}

/** `spike operator restore-backup --in FILE`. */
export async function runRestoreBackup({ options, io }: CommandContext): Promise<number> {
  const input = options.in as string | undefined;
  if (!input) throw new UsageError("--in is required");
  const target = storeLocation(options, io.env);
  const result = await failAsCli(() => restoreBackup(input, target));
  const where = target.kind === "sqlite" ? `the SQLite store in ${target.dataDir}` : "the Postgres database";
  io.stdout(`restored ${input} into ${where}: ${describeCounts(result.counts)}\n`);
  if (result.manifest.keyCheck !== null) {
    const { keyVersion, rotatingTo } = result.manifest;
    io.stderr(
      "next: start Nexus on this store, then give it its root key with 'spike operator restore' and the\n" +
        `recovery shards of root key version ${keyVersion} of the deployment the backup came from ` +
        "(Nexus accepts no other key for this data)\n",
    );
    if (rotatingTo !== undefined) {
      io.stderr(
        `note: the backup was taken while a rotation to root key version ${rotatingTo} was running: ` +
          `records already re-sealed need version ${rotatingTo} too, which Nexus gets from the Keepers\n`,
      );
    }
  }
  return 0;
}

/** The store named by the flags, else by Nexus's settings in the environment. */
function storeLocation(options: CommandContext["options"], env: Readonly<Record<string, string>>): StoreLocation {
  const dataDir = options["data-dir"] as string | undefined;
  const postgresUrl = options["postgres-url"] as string | undefined;
  if (dataDir !== undefined && postgresUrl !== undefined) {
    throw new UsageError("give either --data-dir or --postgres-url, not both");
  }
  const overrides = dataDir !== undefined
    ? { SPIKE_NEXUS_BACKEND_STORE: "sqlite", SPIKE_NEXUS_DATA_DIR: dataDir }
    : postgresUrl !== undefined
    ? { SPIKE_NEXUS_BACKEND_STORE: "postgres", SPIKE_NEXUS_POSTGRES_URL: postgresUrl }
    : {};
  let store;
  try {
    store = resolveStoreConfig({ ...env, ...overrides });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`configuration: ${error.message}`);
    throw error;
  }
  switch (store.backendStore) {
    case "sqlite":
    case "sqlite-worker":
      return { kind: "sqlite", dataDir: store.dataDir! };
    case "postgres":
      return { kind: "postgres", options: failAsCliSync(() => postgresStoreOptions(store.postgres!)) };
    case "memory":
    case "lite":
      throw new CliError(
        `SPIKE_NEXUS_BACKEND_STORE is ${store.backendStore}: nothing is kept on disk to back up or restore into ` +
          "(set it to sqlite or postgres, or pass --data-dir or --postgres-url)",
      );
  }
}

/** Backup failures and store errors become CLI errors (exit 1) with their message. */
async function failAsCli<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof BackupError) throw new CliError(error.message);
    if (error instanceof UsageError || error instanceof CliError) throw error;
    throw new CliError((error as Error)?.message ?? String(error));
  }
}

function failAsCliSync<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw new CliError((error as Error)?.message ?? String(error));
  }
}
