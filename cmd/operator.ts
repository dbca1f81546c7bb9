/**
 * `spike operator recover|restore|rotate|status`: break-glass handling and
 * rotation of the root key; `spike operator backup|restore-backup`: copies
 * of the store. Each command loads its implementation when it runs
 * (`operator_keys.ts`, `operator_backup.ts`).
 *
 * @module
 */
import type { CommandSpec, OptionSpec } from "../lib/cli/command.ts";

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
  summary: "Root key: recovery shards, restore, rotation, status; back up and restore the store",
  subcommands: [
    {
      name: "recover",
      summary: "Save every recovery shard as spike.recovery.<i>.txt (Pilot recover role)",
      details: "Files go to SPIKE_PILOT_RECOVERY_DIR (default ~/.spike/recover), mode 0600. Keep them offline.\n" +
        "Each file names the root key version its shard belongs to; take new files after every rotation.",
      positionals: { min: 0, max: 0 },
      run: async (context) => (await import("./operator_keys.ts")).runRecover(context),
    },
    {
      name: "restore",
      summary: "Send one recovery shard to Nexus (Pilot restore role)",
      details: "Reads a recovery file (or its 'spike:<i>:<hex>' line) from standard input, or asks for the line\n" +
        "without echo on a terminal. Run once per shard until Nexus reports the root key restored.\n" +
        "Shards of a root key version a rotation retired are refused, naming the version.",
      positionals: { min: 0, max: 0 },
      run: async (context) => (await import("./operator_keys.ts")).runRestore(context),
    },
    {
      name: "rotate",
      summary: "Rotate the root key: a new key, every record re-sealed, the old key dropped (superuser)",
      details: "Nexus keeps serving reads and writes meanwhile. Waits for the rotation to finish unless\n" +
        "--no-wait. Afterwards take new recovery files ('spike operator recover'): old ones no longer restore.",
      positionals: { min: 0, max: 0 },
      options: {
        "no-wait": { type: "boolean", description: "Return once the rotation has started" },
      },
      run: async (context) => (await import("./operator_keys.ts")).runRotate(context),
    },
    {
      name: "status",
      summary: "Root key version, rotation progress, Keepers, tampered rows (superuser)",
      positionals: { min: 0, max: 0 },
      options: {
        format: { type: "string", short: "f", description: "Output format: human, json or yaml", valueName: "format" },
      },
      run: async (context) => (await import("./operator_keys.ts")).runKeyStatus(context),
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
