/**
 * Test fixtures for code that talks to Keepers: a development CA with one
 * identity per role, real Keepers on 127.0.0.1 (port 0 or a chosen one), a
 * log that records lines, and a bounded `waitUntil`. Only tests import this
 * file.
 *
 * @module
 */
import type { LogFields, Logger } from "../log/logger.ts";
import { createDevCa, type DevCa } from "../spiffe/dev_ca.ts";
import { type IdPredicate, trustRoots } from "../spiffe/roles.ts";
import { createMtlsClient, type MtlsClient } from "../spiffe/mtls_client.ts";
import { createStaticSource, type StaticSource } from "../spiffe/static_source.ts";
import { type RunningKeeper, startKeeper } from "./server.ts";
import { freePort } from "../../tests/support/ports.ts";
import { Hono } from "hono";
import type { PeerBindings } from "../nexus/peer.ts";
import { serveHono } from "../spiffe/mtls_server.ts";

/** The trust domain of every fixture identity. */
export const TEST_TD = "spike.ist";

/** A log that keeps its lines (as JSON) so tests can wait for one or search them. */
export interface RecordingLog extends Logger {
  /** Every line so far. */
  readonly lines: readonly string[];
  /** How many lines contain `text`. */
  count(text: string): number;
}

/** Creates a {@linkcode RecordingLog}. */
export function recordingLog(): RecordingLog {
  const lines: string[] = [];
  const put = (level: string) => (message: string, fields?: LogFields) => {
    lines.push(JSON.stringify({ level, message, ...fields }));
  };
  return {
    lines,
    count: (text) => lines.filter((line) => line.includes(text)).length,
    debug: put("debug"),
    info: put("info"),
    warn: put("warn"),
    error: put("error"),
  };
}

/** Polls `check` every 10 ms until it is true; throws `what` after `timeoutMs` (default 10 s). */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A development CA and a helper that mints a ready identity source for a role path. */
export interface TestPki {
  /** The CA. */
  readonly ca: DevCa;
  /** An identity source for `spiffe://spike.ist/<path>`. */
  source(path: string): Promise<StaticSource>;
}

/** Creates a fresh CA for one test. */
export async function createTestPki(): Promise<TestPki> {
  const ca = await createDevCa({ trustDomain: TEST_TD });
  return {
    ca,
    source: async (path) => createStaticSource(await ca.issue(`spiffe://${TEST_TD}/${path}`)),
  };
}

/** Starts a real Keeper with a fresh Keeper SVID on 127.0.0.1 (`port` 0 picks one). */
export async function startTestKeeper(pki: TestPki, port = 0, log: Logger = recordingLog()): Promise<RunningKeeper> {
  return await startKeeper({
    config: {
      identity: { endpointSocket: "unix:///nonexistent" },
      trustRoots: trustRoots(),
      listen: { host: "127.0.0.1", port },
      tlsHandshakeTimeoutMs: 10_000,
      maxConnections: 128,
    },
    identity: await pki.source("spike/keeper"),
    log,
  });
}

/** The base URL of a Keeper (or anything) on 127.0.0.1. */
export function localUrl(port: number): string {
  return `https://127.0.0.1:${port}`;
}

/**
 * A port nothing listens on now and no other test will be given (claimed
 * outside the kernel's ephemeral range; see `tests/support/ports.ts`), for a
 * server a test starts later or a peer that must stay unreachable.
 */
export function closedPort(): number {
  return freePort();
}

/** An mTLS client as role `path` that talks only to servers matching `serverId`. */
export async function testClient(
  pki: TestPki,
  path: string,
  serverId: IdPredicate,
  timeoutMs = 2000,
): Promise<MtlsClient> {
  return createMtlsClient({ identity: await pki.source(path), serverId, timeoutMs });
}

/** A Keeper that behaves as SPIKE's does: one shard, key versions ignored. */
export interface SpikeLikeKeeper {
  /** The bound port. */
  readonly port: number;
  /** The one shard it holds (a copy), if any. */
  shard(): Uint8Array | undefined;
  /** Stops it. */
  close(): Promise<void>;
}

/**
 * Starts a Keeper that knows nothing of key versions, like SPIKE's: a
 * contributed shard replaces the one held whatever `keyVersion` says, the
 * answer is `{}`, and `/v1/store/shard` hands out that one shard without a
 * version. For tests of how Nexus treats such Keepers.
 */
export async function startSpikeLikeKeeper(pki: TestPki, port = 0): Promise<SpikeLikeKeeper> {
  let held: Uint8Array | undefined;
  const app = new Hono<{ Bindings: PeerBindings }>();
  app.post("/v1/store/contribute", async (c) => {
    const body = await c.req.json();
    held = Uint8Array.from(body.shard as number[]);
    return c.json({});
  });
  app.post(
    "/v1/store/shard",
    (c) => held ? c.json({ shard: Array.from(held) }) : c.json({ err: "api_not_found" }, 404),
  );
  const server = await serveHono(app, { identity: await pki.source("spike/keeper"), maxBodyBytes: 4096 });
  const bound = await server.listen(port, "127.0.0.1");
  return { port: bound, shard: () => held?.slice(), close: () => server.close() };
}
