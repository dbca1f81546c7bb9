/**
 * A Nexus served over real mutual TLS in this process, on any backend, with
 * a root key installed by hand, and typed clients speaking as any SPIFFE ID
 * (certificates from one development CA per test file).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { NexusClient } from "../../lib/client/nexus_client.ts";
import { resolveNexusConfig } from "../../lib/config/spike_config.ts";
import { silentLogger } from "../../lib/log/logger.ts";
import { installRootKey } from "../../lib/nexus/key_installer.ts";
import { type RunningNexus, startNexus } from "../../lib/nexus/server.ts";
import { type AuditRecord, memoryAuditSink, type SweepRecord } from "../../lib/nexus/audit.ts";
import type { SweepReport } from "../../lib/nexus/expiry_sweeper.ts";
import { createDevCa, type DevCa } from "../../lib/spiffe/dev_ca.ts";
import { createMtlsClient, type MtlsClient } from "../../lib/spiffe/mtls_client.ts";
import { isNexus, spikeIdFor } from "../../lib/spiffe/roles.ts";
import { createStaticSource } from "../../lib/spiffe/static_source.ts";

/** The backends a fixture can run on. */
export type FixtureBackend = "sqlite" | "sqlite-worker" | "memory" | "postgres";

/** A running Nexus and what a test needs around it. */
export interface MtlsNexus {
  /** The running server (its `deps` hold the store and the clock). */
  readonly nexus: RunningNexus;
  /** Its temp dir (data, audit log). */
  readonly dir: string;
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  /** Audit records so far, oldest first. */
  readonly audit: readonly AuditRecord[];
  /** The expiry sweep's audit records, in order. */
  readonly sweeps: readonly SweepRecord[];
  /** The database URL, on Postgres. */
  readonly postgresUrl?: string;
  /** A client speaking as `spiffeId` (closed by `close`). */
  client(spiffeId: string): Promise<NexusClient>;
  /** Stops Nexus, closes clients, removes the temp dir. */
  close(): Promise<void>;
}

/** What to start. */
export interface MtlsNexusOptions {
  /** Backend (default `sqlite`). */
  readonly backend?: FixtureBackend;
  /** Database URL, for `postgres`. */
  readonly postgresUrl?: string;
  /** The root key to install (copied; default: a fixed test key). */
  readonly rootKey?: Uint8Array;
  /** Extra `SPIKE_*` settings. */
  readonly env?: Record<string, string>;
  /** Wall clock (default: the system's). */
  readonly clock?: () => Date;
  /** Told of every expiry sweep pass that ran. */
  readonly onSweep?: (report: SweepReport) => void;
}

/** One development CA per importing test file (key generation is the slow part). */
export function sharedCa(): () => Promise<DevCa> {
  let ca: Promise<DevCa> | undefined;
  return () => ca ??= createDevCa();
}

/** A fixed test root key (a valid P-256 scalar). */
export function fixedRootKey(): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (i * 11 + 5) & 0x7f);
}

/** Starts a Nexus on `options.backend` with its root key installed. */
export async function startMtlsNexus(ca: DevCa, options: MtlsNexusOptions = {}): Promise<MtlsNexus> {
  const backend = options.backend ?? "sqlite";
  const dir = await Deno.makeTempDir({ prefix: "spike_kv_" });
  const config = resolveNexusConfig({
    HOME: dir,
    SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0",
    SPIKE_NEXUS_BACKEND_STORE: backend,
    ...(backend === "postgres" ? { SPIKE_NEXUS_POSTGRES_URL: options.postgresUrl! } : {}),
    SPIKE_NEXUS_DATA_DIR: join(dir, "data"),
    SPIKE_NEXUS_KEEPER_PEERS: "",
    ...options.env,
  });
  const sink = memoryAuditSink();
  const nexus = await startNexus({
    config,
    identity: createStaticSource(await ca.issue(spikeIdFor("nexus"))),
    log: silentLogger,
    audit: sink,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.onSweep ? { onSweep: options.onSweep } : {}),
  });
  const clients: MtlsClient[] = [];
  const url = `https://127.0.0.1:${nexus.port}`;
  const fixture: MtlsNexus = {
    nexus,
    dir,
    url,
    audit: sink.records,
    sweeps: sink.sweeps,
    ...(options.postgresUrl ? { postgresUrl: options.postgresUrl } : {}),
    async client(spiffeId) {
      const transport = createMtlsClient({
        identity: createStaticSource(await ca.issue(spiffeId)),
        serverId: (id) => isNexus(id),
        timeoutMs: 30_000,
      });
      clients.push(transport);
      return new NexusClient(url, transport);
    },
    async close() {
      for (const c of clients) c.close();
      await nexus.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  try {
    const key = (options.rootKey ?? fixedRootKey()).slice();
    try {
      assert.equal(await installRootKey(nexus.deps, key), "installed");
    } finally {
      key.fill(0);
    }
  } catch (error) {
    await fixture.close();
    throw error;
  }
  return fixture;
}
