/**
 * Real `spike nexus` and `spike keeper` processes against clients that
 * misbehave on purpose, over real TLS: bodies refused before they are read
 * and then abandoned, kept-alive connections reused after such a refusal,
 * methods the Fetch API refuses, bytes node's HTTP parser refuses, clients
 * that hang up mid-body, connections that never start TLS, and more
 * connections than allowed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type DevIdentities, mintDevIdentities } from "../lib/dev/identities.ts";
import { getPlain } from "../lib/dev/health.ts";
import type { X509Identity } from "../lib/spiffe/identity.ts";
import { roleEnvironment, SERVER_MEMORY_V8 } from "../lib/config/permissions.ts";
import { eventually, freePort, SpikeProcess, TEST_DENO_FLAGS } from "./support/process.ts";
import { closeWaitSockets, postAndHangUp, RawConnection, residentMiB } from "./support/raw_client.ts";

const MIB = 1024 * 1024;
const SECRETS_LIST = "/v1/store/secrets?action=list";
const CONTRIBUTE = "/v1/store/contribute";

/** A running role process and what the tests read from it. */
interface Role {
  readonly process: SpikeProcess;
  readonly port: number;
  readonly ids: DevIdentities;
  /** The audit records so far (Nexus only). */
  audit(): Promise<Array<Record<string, unknown>>>;
  stop(): Promise<void>;
}

async function startRole(role: "nexus" | "keeper", env: Record<string, string> = {}): Promise<Role> {
  const dir = await Deno.makeTempDir({ prefix: `spike_hostile_${role}_` });
  const ids = await mintDevIdentities(dir, "spike.ist", 1);
  const port = freePort();
  const auditFile = join(dir, "audit.log");
  // Launched with the memory settings every deployment gives the server roles.
  const process = new SpikeProcess([role], {
    denoFlags: [...TEST_DENO_FLAGS, `--v8-flags=${SERVER_MEMORY_V8}`],
    env: role === "nexus"
      ? {
        SPIKE_SVID_DIR: ids.dirOf("nexus"),
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${port}`,
        SPIKE_NEXUS_BACKEND_STORE: "memory",
        SPIKE_NEXUS_AUDIT_LOG: auditFile,
        SPIKE_LOG_LEVEL: "debug",
        ...roleEnvironment(role),
        ...env,
      }
      : {
        SPIKE_SVID_DIR: ids.dirOf("keeper-1"),
        SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}`,
        SPIKE_LOG_LEVEL: "debug",
        ...roleEnvironment(role),
        ...env,
      },
  });
  try {
    await process.waitFor(new RegExp(`${role} listening`));
  } catch (error) {
    await process.stop();
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    process,
    port,
    ids,
    async audit() {
      const text = await Deno.readTextFile(auditFile).catch(() => "");
      // Request records only; the chain writes records of its own (start, key, ...).
      return text.split("\n").filter(Boolean).map((line) => JSON.parse(line)).filter((r) => r.type === "audit");
    },
    async stop() {
      const status = await process.stop();
      await Deno.remove(dir, { recursive: true });
      assert.equal(status.code, 0, process.output);
    },
  };
}

function identity(role: Role, name: string): X509Identity {
  const found = role.ids.byName.get(name);
  if (!found) throw new Error(`no dev identity ${name}`);
  return found;
}

/** Lines the process logged at `level`. */
function logLines(role: Role, level: string): string[] {
  return role.process.output.split("\n").filter((line) => line.includes(`"level":"${level}"`));
}

/** `count` POSTs of `size` bytes without a certificate, `parallel` at a time, each hanging up after the answer. */
async function postMany(
  port: number,
  path: string,
  count: number,
  options: { size?: number; parallel?: number; chunked?: boolean } = {},
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const parallel = options.parallel ?? 10;
  for (let sent = 0; sent < count; sent += parallel) {
    const batch = Array.from(
      { length: Math.min(parallel, count - sent) },
      () => postAndHangUp(port, path, options.size ?? MIB, { chunked: options.chunked }),
    );
    for (const status of await Promise.all(batch)) statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  return statuses;
}

/**
 * The unread-body leak, end to end: `rounds` batches of `perRound`
 * unauthenticated 1 MiB POSTs, each client hanging up once it has its
 * answer. Two seconds after the last one no socket of the server may be
 * left in CLOSE-WAIT, and its memory must not grow with the number of
 * requests.
 *
 * Why memory is compared with a warmed-up process and not with a fresh one:
 * Deno's TLS layer reads whatever a client sends whether or not anyone reads
 * the request (there is no backpressure to the socket), so every refused MiB
 * passes through the process once. Those buffers are garbage at once, but
 * V8 collects them lazily and glibc keeps freed pages: the first few hundred
 * MiB of any request traffic, refused or served, raise the resident size,
 * which then stays flat. A leak keeps the MiB instead (before the fix of
 * the unread-body leak, about three quarters of them: +221 MiB over the 300
 * measured requests, without end). The roles run here with the memory
 * settings every deployment gives them (lib/config/permissions.ts: a 2 MiB
 * young generation, glibc mapping blocks of 16 KiB and more apart), which
 * keep the plateau low: in six runs the resident size stayed within
 * 87–148 MiB and the measured rounds changed it by −31 to +30 MiB (without
 * the settings: 137–227 MiB, up to +76). V8 still grows its heap in steps,
 * and on a busy machine a step can land among the measured rounds (+122 MiB
 * seen under two parallel suites, without the settings). So the test warms
 * the process up, then checks that the measured requests leave less than
 * `keptShare` of what they sent (between that step and the leak's +221 MiB)
 * and that no round ends above `peakMiB` (the plateau plus such a step; the
 * leak passes it within the six rounds).
 */
async function assertNoLeak(role: Role, path: string, options: { chunked?: boolean }): Promise<void> {
  const perRound = 100;
  const warmUpRounds = 3;
  const measuredRounds = 3;
  const keptShare = 0.6;
  const peakMiB = 300;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 2000));
  const sizes: number[] = [];
  for (let round = 0; round < warmUpRounds + measuredRounds; round++) {
    const statuses = await postMany(role.port, path, perRound, options);
    await settle();
    assert.equal(closeWaitSockets(role.port), 0, `round ${round}: sockets left in CLOSE-WAIT`);
    sizes.push(residentMiB(role.process.pid));
    // A client without a certificate gets a small allowance of its unread body
    // read and dropped (64 KiB), then the connection is closed: it may see the
    // reset before its 401 (0 here).
    const expected = [0, 401];
    const seen = [...statuses.keys()];
    assert.ok(seen.every((status) => expected.includes(status)), `round ${round}: ${JSON.stringify([...statuses])}`);
  }
  const grown = sizes.at(-1)! - sizes[warmUpRounds - 1]!;
  assert.ok(
    sizes.every((size) => size < peakMiB),
    `resident size went above ${peakMiB} MiB (${sizes.map((s) => s.toFixed(0)).join(" → ")} MiB)`,
  );
  assert.ok(
    grown < keptShare * measuredRounds * perRound,
    `resident size grew ${grown.toFixed(0)} MiB over ${measuredRounds * perRound} more requests ` +
      `(${sizes.map((s) => s.toFixed(0)).join(" → ")} MiB)`,
  );
}

Deno.test("nexus: unauthenticated 1 MiB POSTs and hang-ups leave no CLOSE-WAIT socket and no growing memory", async () => {
  const nexus = await startRole("nexus", { SPIKE_LOG_LEVEL: "info" });
  try {
    await assertNoLeak(nexus, SECRETS_LIST, {});
  } finally {
    await nexus.stop();
  }
});

Deno.test("keeper: the same with chunked bodies (its 4 KiB cap never applied to an unread body)", async () => {
  const keeper = await startRole("keeper", { SPIKE_LOG_LEVEL: "info" });
  try {
    await assertNoLeak(keeper, CONTRIBUTE, { chunked: true });
  } finally {
    await keeper.stop();
  }
});

/**
 * A refused request whose body the server never read, on a kept-alive
 * connection, followed by a second request on that same connection: the
 * second gets its own, correct answer. With the body sent whole before the
 * answer, and with half of it sent after. `who` presents a certificate (the
 * server then drops up to its body cap of an unread body); without one only
 * 64 KiB are dropped, so the body must stay within that.
 */
async function assertKeepAliveAfterRefusal(
  role: Role,
  path: string,
  bodySize: number,
  refusal: { status: number; err: string; who?: X509Identity } = { status: 401, err: "access_unauthorized" },
): Promise<void> {
  for (const split of [false, true]) {
    const connection = await RawConnection.open(role.port, refusal.who);
    try {
      const body = "x".repeat(bodySize);
      const head = `POST ${path} HTTP/1.1\r\nhost: spike\r\ncontent-length: ${bodySize}\r\n\r\n`;
      await connection.write(head + (split ? body.slice(0, bodySize / 2) : body));
      const refused = await connection.readAnswer();
      assert.equal(refused.status, refusal.status, `split=${split}`);
      assert.deepEqual(JSON.parse(refused.body), { err: refusal.err });
      assert.notEqual(refused.headers.connection, "close", "a small unread body keeps the connection");
      if (split) await connection.write(body.slice(bodySize / 2));
      await connection.write("GET /health HTTP/1.1\r\nhost: spike\r\n\r\n");
      const health = await connection.readAnswer();
      assert.equal(health.status, 200, `split=${split}: ${health.body}`);
      assert.deepEqual(JSON.parse(health.body), { status: "ok" });
    } finally {
      connection.destroy();
    }
  }
  // A chunked body is dropped the same way while it stays within the bound...
  const chunked = await RawConnection.open(role.port);
  try {
    await chunked.write(`POST ${path} HTTP/1.1\r\nhost: spike\r\ntransfer-encoding: chunked\r\n\r\n10\r\n`);
    const refused = await chunked.readAnswer();
    assert.equal(refused.status, 401);
    await chunked.write(`${"y".repeat(16)}\r\n0\r\n\r\nGET /health HTTP/1.1\r\nhost: spike\r\n\r\n`);
    assert.equal((await chunked.readAnswer()).status, 200);
    // ...and past it (64 KiB without a certificate) the server hangs up.
    await chunked.write(`POST ${path} HTTP/1.1\r\nhost: spike\r\ntransfer-encoding: chunked\r\n\r\n`);
    assert.equal((await chunked.readAnswer()).status, 401);
    const piece = `4000\r\n${"z".repeat(0x4000)}\r\n`;
    for (let sent = 0; sent <= 2 * MIB && !chunked.closed; sent += 0x4000) await chunked.write(piece);
    await chunked.readUntilClosed();
  } finally {
    chunked.destroy();
  }
}

Deno.test("nexus: a kept-alive connection whose first request was refused unread answers its second", async () => {
  const nexus = await startRole("nexus");
  try {
    await assertKeepAliveAfterRefusal(nexus, SECRETS_LIST, 60_000);
    // A caller with a valid SVID refused before its body mattered (no root key
    // yet: 503) keeps its connection with a body near the 1 MiB cap, so a
    // client that retries a not-ready answer is not met with a reset.
    await assertKeepAliveAfterRefusal(nexus, SECRETS_LIST, 900_000, {
      status: 503,
      err: "state_not_ready",
      who: identity(nexus, "pilot-superuser"),
    });
  } finally {
    await nexus.stop();
  }
});

Deno.test("keeper: a kept-alive connection whose first request was refused unread answers its second", async () => {
  const keeper = await startRole("keeper");
  try {
    await assertKeepAliveAfterRefusal(keeper, CONTRIBUTE, 2_000);
  } finally {
    await keeper.stop();
  }
});

/** Sends `raw` on a fresh TLS connection and returns the one answer; the server must then close. */
async function exchange(port: number, raw: string): Promise<{ status: number; json: unknown; closed: boolean }> {
  const connection = await RawConnection.open(port);
  try {
    await connection.write(raw);
    const answer = await connection.readAnswer();
    await connection.readUntilClosed();
    return { status: answer.status, json: JSON.parse(answer.body), closed: connection.closed };
  } finally {
    connection.destroy();
  }
}

Deno.test("nexus: TRACE, TRACK, CONNECT and what node's parser refuses get JSON errors; the requests reaching the app are audited", async () => {
  const nexus = await startRole("nexus");
  try {
    const bad = { err: "api_bad_request" };
    const cases: Array<[string, string, number, unknown]> = [
      ["TRACE", "TRACE /v1/store/secrets HTTP/1.1\r\nhost: spike\r\nconnection: close\r\n\r\n", 400, bad],
      [
        "TRACE /health",
        "TRACE /health HTTP/1.1\r\nhost: spike\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        400,
        bad,
      ],
      ["CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n", 400, bad],
      ["TRACK", "TRACK /v1/store/secrets HTTP/1.1\r\nhost: spike\r\n\r\n", 400, bad],
      ["unknown method", "BREW /v1/store/secrets HTTP/1.1\r\nhost: spike\r\n\r\n", 400, bad],
      ["garbage", "\x00\x01 not http at all\r\n\r\n", 400, bad],
      ["bad chunk", `POST ${SECRETS_LIST} HTTP/1.1\r\nhost: s\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n`, 400, bad],
      ["header too large", `GET /health HTTP/1.1\r\nhost: spike\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`, 431, bad],
      [
        "unknown expectation",
        `POST ${SECRETS_LIST} HTTP/1.1\r\nhost: s\r\nexpect: x\r\ncontent-length: 2\r\n\r\n{}`,
        417,
        bad,
      ],
      ["no Host", "GET /health HTTP/1.1\r\n\r\n", 400, bad],
    ];
    for (const [name, raw, status, json] of cases) {
      const answer = await exchange(nexus.port, raw);
      assert.deepEqual([answer.status, answer.json], [status, json], name);
    }
    // Method refusals went through the app: audited, metered, and logged at most at debug.
    // (The request with the bad chunk reached the app too, which refused it for its
    // missing certificate before the parser failed on the body.)
    await eventually(async () => (await nexus.audit()).length >= 4, "four audit records");
    const records = (await nexus.audit()).map((r) => [r.route, r.status, r.err, r.outcome, r.spiffeId]);
    assert.deepEqual(records, [
      ["/v1/store/secrets", 400, "api_bad_request", "invalid", null],
      ["/health", 400, "api_bad_request", "invalid", null],
      ["/example.com:443", 400, "api_bad_request", "invalid", null],
      ["/v1/store/secrets", 401, "access_unauthorized", "denied", null],
    ]);
    const metrics = (await getPlain(nexus.port, "/metrics")).body;
    assert.match(metrics, /spike_nexus_requests_total\{route="\/v1\/store\/secrets",code="400"\} 1\n/);
    assert.doesNotMatch(metrics, /code="5\d\d"/);
    assert.deepEqual(logLines(nexus, "error"), []);
  } finally {
    await nexus.stop();
  }
});

/** Starts a request with a declared body, sends part of it, and hangs up. */
async function hangUpMidBody(port: number, path: string, who: X509Identity, declared: number): Promise<void> {
  const connection = await RawConnection.open(port, who);
  try {
    await connection.write(`POST ${path} HTTP/1.1\r\nhost: spike\r\ncontent-length: ${declared}\r\n\r\n{"shards`);
    // Let the server start reading the body before the hang-up.
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    connection.destroy();
  }
}

Deno.test("nexus: a client hanging up mid-body is audited as aborted (499), never counted or logged as a server error", async () => {
  const nexus = await startRole("nexus");
  try {
    await hangUpMidBody(nexus.port, "/v1/operator/restore", identity(nexus, "pilot-restore"), 50_000);
    await nexus.process.waitFor(/request aborted by the client/);
    await eventually(async () => (await nexus.audit()).length === 1, "the audit record");
    const [record] = await nexus.audit();
    assert.deepEqual(
      [record!.route, record!.status, record!.outcome, record!.err],
      ["/v1/operator/restore", 499, "aborted", null],
    );
    assert.equal(record!.spiffeId, "spiffe://spike.ist/spike/pilot/role/restore");
    const metrics = (await getPlain(nexus.port, "/metrics")).body;
    assert.match(metrics, /spike_nexus_requests_total\{route="\/v1\/operator\/restore",code="499"\} 1\n/);
    assert.doesNotMatch(metrics, /code="5\d\d"/);
    assert.deepEqual(logLines(nexus, "error"), []);
    assert.match(logLines(nexus, "debug").join("\n"), /request aborted by the client/);
  } finally {
    await nexus.stop();
  }
});

Deno.test("keeper: a client hanging up mid-body is logged at debug, not as an error", async () => {
  const keeper = await startRole("keeper");
  try {
    await hangUpMidBody(keeper.port, CONTRIBUTE, identity(keeper, "nexus"), 4000);
    await keeper.process.waitFor(/request aborted by the client/);
    assert.deepEqual(logLines(keeper, "error"), []);
    assert.match(logLines(keeper, "debug").join("\n"), /request aborted by the client/);
  } finally {
    await keeper.stop();
  }
});

Deno.test("nexus: a chunked body streaming past the cap gets 413, is audited as such, and ends the connection", async () => {
  const nexus = await startRole("nexus", { SPIKE_NEXUS_MAX_BODY_SIZE: "65536" });
  const connection = await RawConnection.open(nexus.port, identity(nexus, "pilot-restore"));
  try {
    // The restore route reads its body without a root key; 16 KiB chunks until the server answers.
    await connection.write(`POST /v1/operator/restore HTTP/1.1\r\nhost: spike\r\ntransfer-encoding: chunked\r\n\r\n`);
    const piece = `4000\r\n${"z".repeat(0x4000)}\r\n`;
    for (let sent = 0; sent <= 2 * MIB && !connection.closed; sent += 0x4000) {
      if (!(await connection.write(piece))) break;
    }
    const answer = await connection.readAnswer();
    assert.deepEqual([answer.status, JSON.parse(answer.body)], [413, { err: "api_payload_too_large" }]);
    assert.equal(answer.headers.connection, "close");
    await connection.readUntilClosed();
    await eventually(async () => (await nexus.audit()).length === 1, "the audit record");
    const [record] = await nexus.audit();
    assert.deepEqual(
      [record!.route, record!.status, record!.err, record!.outcome],
      ["/v1/operator/restore", 413, "api_payload_too_large", "invalid"],
    );
    assert.deepEqual(logLines(nexus, "error"), []);
  } finally {
    connection.destroy();
    await nexus.stop();
  }
});

/**
 * A TCP connection that never sends a ClientHello is closed after the
 * configured handshake timeout (1 s here; node's default was 120 s), and
 * past the connection cap new connections are closed on arrival while a
 * legitimate client gets through again once the others go away.
 */
async function assertConnectionBounds(role: Role, cap: number): Promise<void> {
  const silent = await RawConnection.openTcp(role.port);
  await silent.readUntilClosed(8_000);

  // Fill every slot with idle TLS connections (they finished their handshake, so they stay).
  const hogs: RawConnection[] = [];
  try {
    for (let i = 0; i < cap; i++) hogs.push(await RawConnection.open(role.port));
    const turnedAway = await RawConnection.openTcp(role.port);
    await turnedAway.readUntilClosed(2_000);
    await assert.rejects(getPlain(role.port, "/health"), "a client past the cap is refused");
  } finally {
    for (const hog of hogs) hog.destroy();
  }
  await eventually(async () => (await getPlain(role.port, "/health")).status === 200, "a client gets in again");
}

Deno.test("nexus: a silent TCP connection is closed after SPIKE_NEXUS_TLS_HANDSHAKE_TIMEOUT; SPIKE_NEXUS_MAX_CONNECTIONS caps a flood", async () => {
  const nexus = await startRole("nexus", {
    SPIKE_NEXUS_TLS_HANDSHAKE_TIMEOUT: "1s",
    SPIKE_NEXUS_MAX_CONNECTIONS: "4",
  });
  try {
    await assertConnectionBounds(nexus, 4);
  } finally {
    await nexus.stop();
  }
});

Deno.test("keeper: the same bounds with SPIKE_KEEPER_TLS_HANDSHAKE_TIMEOUT and SPIKE_KEEPER_MAX_CONNECTIONS", async () => {
  const keeper = await startRole("keeper", {
    SPIKE_KEEPER_TLS_HANDSHAKE_TIMEOUT: "1s",
    SPIKE_KEEPER_MAX_CONNECTIONS: "3",
  });
  try {
    await assertConnectionBounds(keeper, 3);
  } finally {
    await keeper.stop();
  }
});
