/**
 * `spike operator backup` and `restore-backup`: a consistent online copy of
 * the store while Nexus serves, and its way back into an empty store.
 *
 * The copy is taken from the store itself, not through Nexus: it holds
 * sealed data only, so it needs no key, and no API route has to exist for
 * it. Two file kinds:
 *
 * - `sqlite` (SQLite stores only): a copy of the database file made with
 *   SQLite's online backup API; also usable by copying it into a data
 *   directory as `spike.db`.
 * - `jsonl`: the logical export (`jsonl.ts`), from SQLite or Postgres, into
 *   SQLite or Postgres — the way to move between backends.
 *
 * Each backup gets `<file>.manifest.json` beside it (format, spike version,
 * time, source store and schema version, the root key version and its
 * sealed key check value, counts, the file's SHA-256). A restore checks the
 * file against it, fills an empty store in one transaction (the key state
 * row included, so the restored store names the same root key version), and
 * checks the counts, key version and key check it wrote before committing.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { encodeBase64 } from "../api/base64.ts";
import type { PostgresStoreOptions } from "../store/postgres_connection.ts";
import { importIntoPostgres, withPostgresSnapshot } from "../store/postgres_backup.ts";
import { SQLITE_FILE_NAME } from "../store/sqlite_files.ts";
import { copySqliteInto, importIntoSqlite, withSqliteSnapshot } from "../store/sqlite_backup.ts";
import { join } from "node:path";
import { manifestPathOf, PendingFile, requireAbsent, sha256OfFile, writeNewFile } from "./files.ts";
import {
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  type BackupCounts,
  BackupError,
  type BackupFileKind,
  type BackupItem,
  type BackupManifest,
  checkManifest,
  describeCounts,
  sameCounts,
} from "./format.ts";
import { type BackupHeader, jsonlItems, looksLikeJsonl, verifyJsonl, writeJsonl } from "./jsonl.ts";
import type { ImportOpener, SnapshotOpener, StoreImport, StoreSnapshot } from "./snapshot.ts";

/** Where a store lives. */
export type StoreLocation =
  | { readonly kind: "sqlite"; readonly dataDir: string }
  | { readonly kind: "postgres"; readonly options: PostgresStoreOptions };

/** What `makeBackup` needs. */
export interface MakeBackupOptions {
  /** The store to copy. */
  readonly source: StoreLocation;
  /** The backup file to create (must not exist). */
  readonly out: string;
  /** `sqlite` (SQLite sources only) or `jsonl`. */
  readonly kind: BackupFileKind;
  /** This build's version, for the manifest. */
  readonly spikeVersion: string;
  /** Wall clock. */
  readonly clock: () => Date;
}

/** Makes a backup and its manifest; resolves the manifest. */
export async function makeBackup(options: MakeBackupOptions): Promise<BackupManifest> {
  const { source, out, kind } = options;
  const manifestPath = manifestPathOf(out);
  await requireAbsent(out);
  await requireAbsent(manifestPath);
  let header: BackupHeader;
  if (kind === "sqlite") {
    if (source.kind !== "sqlite") {
      throw new BackupError("a sqlite backup copies a SQLite store; for Postgres use the jsonl kind (or pg_dump)");
    }
    header = await sqliteFileBackup(join(source.dataDir, SQLITE_FILE_NAME), out, options);
  } else {
    header = await jsonlBackup(snapshotOpener(source), out, options);
  }
  const manifest: BackupManifest = { ...header, sha256: await sha256OfFile(out) };
  await writeNewFile(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

/** The result of a restore. */
export interface RestoreResult {
  /** The backup's manifest. */
  readonly manifest: BackupManifest | BackupHeader;
  /** Rows now in the target (equal to the manifest's). */
  readonly counts: BackupCounts;
}

/**
 * Restores the backup at `input` (either kind) into the empty store at
 * `target`. Nothing is written unless the file checks out, and nothing is
 * kept unless the target ends up with exactly the backup's rows and key
 * check value.
 */
export async function restoreBackup(input: string, target: StoreLocation): Promise<RestoreResult> {
  const kind = await fileKindOf(input);
  const sidecar = await readSidecar(input);
  if (sidecar) {
    if (sidecar.kind !== kind) throw new BackupError(`${manifestPathOf(input)} describes a ${sidecar.kind} backup`);
    if (await sha256OfFile(input) !== sidecar.sha256) {
      throw new BackupError(`${input} does not match the checksum in its manifest (changed or damaged)`);
    }
  }
  if (kind === "sqlite") {
    if (!sidecar) {
      throw new BackupError(
        `${manifestPathOf(input)} is missing: a sqlite backup is checked against its manifest before a restore`,
      );
    }
    return await withSqliteSnapshot(input, async (snapshot) => {
      checkSnapshotAgainst(snapshot, sidecar, input);
      const counts = await fill(importOpener(target), snapshot.items(), sidecar);
      return { manifest: sidecar, counts };
    });
  }
  const header = await verifyJsonl(input);
  if (
    sidecar &&
    (!sameCounts(sidecar.counts, header.counts) || sidecar.keyCheck !== header.keyCheck ||
      sidecar.keyVersion !== header.keyVersion)
  ) {
    throw new BackupError(`${input} and ${manifestPathOf(input)} do not describe the same backup`);
  }
  const counts = await fill(importOpener(target), jsonlItems(input), header);
  return { manifest: sidecar ?? header, counts };
}

async function sqliteFileBackup(file: string, out: string, options: MakeBackupOptions): Promise<BackupHeader> {
  const createdAt = options.clock().toISOString();
  const partial = `${out}.partial`;
  await requireAbsent(partial);
  try {
    await copySqliteInto(file, partial);
    // The facts come from the copy itself, so they describe exactly what it holds.
    const header = await withSqliteSnapshot(
      partial,
      (snapshot) => Promise.resolve(headerOf(snapshot, "sqlite", createdAt, options.spikeVersion)),
    );
    await syncFile(partial);
    await requireAbsent(out);
    await Deno.rename(partial, out);
    return header;
  } catch (error) {
    await Deno.remove(partial).catch(() => {});
    throw error;
  }
}

async function jsonlBackup(open: SnapshotOpener, out: string, options: MakeBackupOptions): Promise<BackupHeader> {
  const file = await PendingFile.create(out);
  try {
    const header = await open(async (snapshot) => {
      const header = headerOf(snapshot, "jsonl", options.clock().toISOString(), options.spikeVersion);
      await writeJsonl(file, header, snapshot.items());
      return header;
    });
    await file.commit();
    return header;
  } catch (error) {
    await file.abandon();
    throw error;
  }
}

function headerOf(snapshot: StoreSnapshot, kind: BackupFileKind, createdAt: string, version: string): BackupHeader {
  return {
    format: BACKUP_FORMAT,
    formatVersion: BACKUP_FORMAT_VERSION,
    kind,
    spikeVersion: version,
    createdAt,
    source: { store: snapshot.store, schemaVersion: snapshot.schemaVersion },
    keyVersion: snapshot.keyState?.currentVersion ?? 1,
    ...(snapshot.keyState?.targetVersion ? { rotatingTo: snapshot.keyState.targetVersion } : {}),
    keyCheck: snapshot.keyCheck === undefined ? null : encodeBase64(snapshot.keyCheck),
    counts: snapshot.counts,
  };
}

/** Imports `items`, then checks counts, key version and key check inside the same transaction. */
async function fill(
  open: ImportOpener,
  items: AsyncIterable<BackupItem>,
  expected: BackupHeader,
): Promise<BackupCounts> {
  let counts!: BackupCounts;
  await open(async (target: StoreImport) => {
    for await (const item of items) await target.add(item);
    counts = await target.counts();
    if (!sameCounts(counts, expected.counts)) {
      throw new BackupError(
        `the restored store would hold ${describeCounts(counts)}, not the backup's ${
          describeCounts(expected.counts)
        }; ` +
          "nothing was kept",
      );
    }
    const keyVersion = (await target.keyState())?.currentVersion ?? 1;
    if (keyVersion !== expected.keyVersion) {
      throw new BackupError(
        `the restored store would be under root key version ${keyVersion}, not the backup's ${expected.keyVersion}; ` +
          "nothing was kept",
      );
    }
    const keyCheck = await target.keyCheck();
    const restored = keyCheck === undefined ? null : encodeBase64(keyCheck);
    if (!sameKeyCheck(restored, expected.keyCheck)) {
      throw new BackupError("the restored key check value differs from the backup's; nothing was kept");
    }
  });
  return counts;
}

function sameKeyCheck(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  const encoder = new TextEncoder();
  return constantTimeEqual(encoder.encode(a), encoder.encode(b));
}

function checkSnapshotAgainst(snapshot: StoreSnapshot, manifest: BackupManifest, input: string): void {
  const keyCheck = snapshot.keyCheck === undefined ? null : encodeBase64(snapshot.keyCheck);
  const keyVersion = snapshot.keyState?.currentVersion ?? 1;
  if (
    !sameCounts(snapshot.counts, manifest.counts) || !sameKeyCheck(keyCheck, manifest.keyCheck) ||
    keyVersion !== manifest.keyVersion
  ) {
    throw new BackupError(`${input} does not hold what its manifest says`);
  }
}

function snapshotOpener(location: StoreLocation): SnapshotOpener {
  return location.kind === "sqlite"
    ? (use) => withSqliteSnapshot(join(location.dataDir, SQLITE_FILE_NAME), use)
    : (use) => withPostgresSnapshot(location.options, use);
}

function importOpener(location: StoreLocation): ImportOpener {
  return location.kind === "sqlite"
    ? (use) => importIntoSqlite(location.dataDir, use)
    : (use) => importIntoPostgres(location.options, use);
}

const SQLITE_MAGIC = new TextEncoder().encode("SQLite format 3\0");

async function fileKindOf(input: string): Promise<BackupFileKind> {
  let prefix: Uint8Array;
  try {
    using file = await Deno.open(input, { read: true });
    const buffer = new Uint8Array(64);
    const n = await file.read(buffer);
    prefix = buffer.subarray(0, n ?? 0);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new BackupError(`no backup at ${input}`);
    throw error;
  }
  if (prefix.length >= SQLITE_MAGIC.length && SQLITE_MAGIC.every((b, i) => prefix[i] === b)) return "sqlite";
  if (looksLikeJsonl(prefix)) return "jsonl";
  throw new BackupError(`${input} is not a spike backup (neither a SQLite database nor a logical export)`);
}

async function readSidecar(input: string): Promise<BackupManifest | undefined> {
  const path = manifestPathOf(input);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BackupError(`${path} is not JSON`);
  }
  return checkManifest(value, path);
}

async function syncFile(path: string): Promise<void> {
  using file = await Deno.open(path, { read: true, write: true });
  await file.sync();
}
