/**
 * What `spike operator backup` and `restore-backup` cost for a store of a
 * given size: each backup kind from SQLite, the logical export from
 * Postgres, and the restore of the export into SQLite and Postgres (one
 * transaction each). Store-level calls, so the figures are the work itself,
 * not process start-up.
 *
 * Run: `deno run -A bench/backup_bench.ts [--quick] [--secrets N] [--rounds R]`
 *
 * The store is filled once with N secrets of 3 versions (200 sealed bytes
 * each), 20 policies and a key check value; Postgres runs on a throwaway
 * durable cluster on loopback. Each figure is the median of R rounds.
 *
 * @module
 */
import { join } from "node:path";
import { makeBackup, restoreBackup, type StoreLocation } from "../lib/backup/backup.ts";
import type { BackupItem } from "../lib/backup/format.ts";
import { KEY_CHECK_META } from "../lib/nexus/key_check.ts";
import { importIntoPostgres } from "../lib/store/postgres_backup.ts";
import { importIntoSqlite } from "../lib/store/sqlite_backup.ts";
import { startPostgresCluster } from "../tests/support/postgres_cluster.ts";
import postgres from "postgres";
import { formatNumber, hasFlag, markdownTable, median, numberFlag } from "./support.ts";

const T0 = Date.UTC(2030, 0, 1);

function* items(secrets: number): Generator<BackupItem> {
  const sealed = crypto.getRandomValues(new Uint8Array(200));
  for (let i = 0; i < secrets; i++) {
    const versions = new Map([1, 2, 3].map((n) => [n, {
      version: n,
      createdTime: new Date(T0 + i * 1000 + n),
      deletedTime: null,
      sealed,
      keyVersion: 1,
    }]));
    yield {
      kind: "secret",
      path: `bench/app-${String(i).padStart(6, "0")}/db`,
      record: {
        revision: 3,
        currentVersion: 3,
        oldestVersion: 1,
        maxVersions: 10,
        createdTime: new Date(T0 + i * 1000),
        updatedTime: new Date(T0 + i * 1000 + 3),
        versions,
      },
    };
  }
  for (let p = 0; p < 20; p++) {
    yield {
      kind: "policy",
      // Policies are sealed rows: name, key version, bytes only the root key opens.
      policy: { kind: "sealed", name: `policy-${p}`, keyVersion: 1, sealed: sealed.slice(0, 120) },
    };
  }
  yield { kind: "meta", key: KEY_CHECK_META, value: sealed.slice(0, 60) };
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await work();
  return performance.now() - t0;
}

if (import.meta.main) {
  const quick = hasFlag(Deno.args, "--quick");
  const secrets = numberFlag(Deno.args, "--secrets", quick ? 1000 : 10_000, 1, 1_000_000);
  const rounds = numberFlag(Deno.args, "--rounds", quick ? 1 : 3, 1, 20);
  const dir = await Deno.makeTempDir({ prefix: "spike_backup_bench_" });
  const cluster = await startPostgresCluster({ durable: true });
  let databases = 0;
  const newDatabase = async (): Promise<StoreLocation & { kind: "postgres" }> => {
    const name = `bench_${databases++}`;
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(cluster.url);
    url.pathname = `/${name}`;
    return { kind: "postgres", options: { url: url.href } };
  };
  try {
    const sqliteSource: StoreLocation = { kind: "sqlite", dataDir: join(dir, "source") };
    await importIntoSqlite(sqliteSource.dataDir, async (target) => {
      for (const item of items(secrets)) await target.add(item);
    });
    const postgresSource = await newDatabase();
    await importIntoPostgres(postgresSource.options, async (target) => {
      for (const item of items(secrets)) await target.add(item);
    });
    const clock = () => new Date();
    const sizes = new Map<string, number>();
    const results = new Map<string, number[]>();
    const record = (label: string, ms: number) => results.set(label, [...(results.get(label) ?? []), ms]);
    for (let round = 0; round < rounds; round++) {
      const out = (name: string) => join(dir, `r${round}-${name}`);
      const backup = async (label: string, source: StoreLocation, kind: "sqlite" | "jsonl", file: string) => {
        record(label, await timed(() => makeBackup({ source, out: file, kind, spikeVersion: "bench", clock })));
        sizes.set(label, (await Deno.stat(file)).size);
      };
      await backup("backup, SQLite → sqlite kind (backup API)", sqliteSource, "sqlite", out("a.sqlite"));
      await backup("backup, SQLite → jsonl kind", sqliteSource, "jsonl", out("a.jsonl"));
      await backup("backup, Postgres → jsonl kind", postgresSource, "jsonl", out("b.jsonl"));
      record(
        "restore, sqlite kind → SQLite",
        await timed(() => restoreBackup(out("a.sqlite"), { kind: "sqlite", dataDir: out("restored-a") })),
      );
      record(
        "restore, jsonl → SQLite",
        await timed(() => restoreBackup(out("a.jsonl"), { kind: "sqlite", dataDir: out("restored-b") })),
      );
      const target = await newDatabase();
      record("restore, jsonl → Postgres", await timed(() => restoreBackup(out("a.jsonl"), target)));
    }
    console.log("## Backup and restore (`bench/backup_bench.ts`)\n");
    console.log(
      `${formatNumber(secrets)} secrets × 3 versions (${formatNumber(secrets * 3)} version rows), 20 policies; ` +
        `median of ${rounds} round${rounds === 1 ? "" : "s"}\n`,
    );
    const rows = [...results].map(([label, samples]) => {
      const ms = median(samples);
      const size = sizes.get(label);
      return [
        label,
        formatNumber(ms, 0),
        formatNumber(secrets / (ms / 1000), 0),
        size === undefined ? "" : formatNumber(size / (1024 * 1024), 1),
      ];
    });
    console.log(
      markdownTable(["operation", "median ms", "secrets/s", "file MiB"], rows, ["left", "right", "right", "right"]),
    );
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
