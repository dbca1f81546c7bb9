/**
 * `spike operator recover|restore`: break-glass handling of the root key;
 * `spike operator backup|restore-backup`: copies of the store.
 *
 * @module
 */
import type { CommandSpec, OptionSpec } from "../lib/cli/command.ts";
import { CliError } from "../lib/cli/errors.ts";
import { ApiError } from "../lib/api/errors.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import { zeroize } from "../lib/crypto/zeroize.ts";
import { formatRecoveryShard, parseRecoveryShard } from "../lib/pilot/recovery_file.ts";
import { withNexus } from "./pilot_session.ts";

/** Flags naming the store, shared by `backup` and `restore-backup`. */
const STORE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  "data-dir": {
    type: "string",
    description: "The SQLite store's directory (default: SPIKE_NEXUS_BACKEND_STORE and SPIKE_NEXUS_DATA_DIR)",
    valueName: "dir",
  },
  "postgres-url": {
    type: "string",
    description:
      "The Postgres store (default SPIKE_NEXUS_POSTGRES_URL; password and CA from SPIKE_NEXUS_POSTGRES_*_FILE)",
    valueName: "url",
  },
};

/** The `operator` command group. */
export const operatorCommand: CommandSpec = {
  name: "operator",
  summary: "Break-glass: recovery shards, restore a Nexus from them; back up and restore the store",
  subcommands: [
    {
      name: "recover",
      summary: "Save every recovery shard as spike.recovery.<i>.txt (Pilot recover role)",
      details: "Files go to SPIKE_PILOT_RECOVERY_DIR (default ~/.spike/recover), mode 0600. Keep them offline.",
      positionals: { min: 0, max: 0 },
      run: async ({ io }) => {
        await withNexus(io, async ({ nexus, config }) => {
          const shards = await nexus.recover();
          try {
            await Deno.mkdir(config.recoveryDir, { recursive: true, mode: 0o700 });
            for (const [index, shard] of [...shards].sort(([a], [b]) => a - b)) {
              const file = `${config.recoveryDir}/spike.recovery.${index}.txt`;
              await Deno.writeTextFile(file, formatRecoveryShard(index, shard) + "\n", { mode: 0o600 });
              // writeTextFile keeps the mode of an existing file; force it.
              await Deno.chmod(file, 0o600);
              io.stderr(`wrote ${file}\n`);
            }
          } finally {
            for (const shard of shards.values()) zeroize(shard);
          }
        });
        return 0;
      },
    },
    {
      name: "restore",
      summary: "Send one recovery shard to Nexus (Pilot restore role)",
      details: "Reads one line 'spike:<i>:<hex>' from standard input, or asks for it without echo on a terminal.\n" +
        "Run once per shard until Nexus reports the root key restored.",
      positionals: { min: 0, max: 0 },
      run: async ({ io }) => {
        const line = await io.readHiddenLine("Enter a recovery shard (input is hidden): ");
        if (line === null || line.trim() === "") throw new CliError("no shard given on standard input");
        let parsed;
        try {
          parsed = parseRecoveryShard(line);
        } catch (error) {
          if (error instanceof ApiError) throw new CliError(error.message);
          throw error;
        }
        try {
          const progress = await withNexus(io, async ({ nexus }) => {
            try {
              return await nexus.restore(parsed.index, parsed.shard);
            } catch (error) {
              if (error instanceof ApiCallError && error.status === 400) {
                throw new CliError(
                  "Nexus refused the shard: it is not a valid shard, the shards sent so far do not rebuild " +
                    "the root key of its data (the collected shards were discarded; send them again), or " +
                    "Nexus already holds its root key and this shard is not one of it",
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
      },
    },
    {
      name: "backup",
      summary: "Copy the store, consistently, while Nexus serves (sealed data only)",
      details: "Reads the store directly, like Nexus does (run it where Nexus's store is reachable, with its\n" +
        "settings). --kind sqlite (default for SQLite stores): a copy of the file (SQLite's online backup API).\n" +
        "--kind jsonl (default for Postgres): the logical export, restorable into SQLite or Postgres.\n" +
        "Writes FILE and FILE.manifest.json (mode 0600); never overwrites. Needs no key: the data stays sealed.",
      options: {
        out: { type: "string", description: "The backup file to create", valueName: "file" },
        kind: { type: "string", description: "sqlite or jsonl (see above)", valueName: "kind" },
        format: {
          type: "string",
          short: "f",
          description: "How to report: human, or the manifest as json or yaml",
          valueName: "format",
        },
        ...STORE_OPTIONS,
      },
      positionals: { min: 0, max: 0 },
      run: async (context) => (await import("./operator_backup.ts")).runBackup(context),
    },
    {
      name: "restore-backup",
      summary: "Load a backup into an empty store (Nexus stopped or not yet started on it)",
      details: "Checks the file against its manifest (and a logical export against its own checksum) first, fills\n" +
        "the store in one transaction, and keeps nothing unless the counts and key check match the backup.\n" +
        "Refuses a store that holds anything. Then start Nexus and restore its root key with\n" +
        "'spike operator restore' and the recovery shards.",
      options: {
        in: { type: "string", description: "The backup file (either format)", valueName: "file" },
        ...STORE_OPTIONS,
      },
      positionals: { min: 0, max: 0 },
      run: async (context) => (await import("./operator_backup.ts")).runRestoreBackup(context),
    },
  ],
};
