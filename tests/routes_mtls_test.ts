/**
 * Every `/v1` route Nexus serves, over real mutual TLS through the
 * `node:http` handler it is served with: each answers its own caller, each
 * refuses a caller without a grant before it touches the data, and every
 * request leaves one audit record and one count under its route's label on
 * `/metrics`. A route added to the app without a cell here fails the test.
 */
import assert from "node:assert/strict";
import { PATHS } from "../lib/api/paths.ts";
import { encryptGcm } from "../lib/crypto/aead.ts";
import { NEXUS_ROUTES } from "../lib/nexus/app.ts";
import { spikeIdFor } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus } from "../lib/spiffe/roles.ts";
import { fixedRootKey, sharedCa, startMtlsNexus } from "./support/mtls_nexus.ts";

const SUPERUSER = spikeIdFor("pilot_superuser");
const RECOVER = spikeIdFor("pilot_recover");
const RESTORE = spikeIdFor("pilot_restore");
const BOOTSTRAP = spikeIdFor("bootstrap");
const NO_GRANT = "spiffe://spike.ist/app/other";
const devCa = sharedCa();

/** Store calls that touch secrets or policies (a refused caller must cause none). */
const DATA_OPERATIONS = [
  "read_secret",
  "write_secret",
  "delete_secret",
  "move_secret",
  "list_secret_paths",
  "list_secret_paths_page",
  "upsert_policy",
  "get_policy",
  "delete_policy",
];

/** One call of one route: who makes it, with what body, and the status it must get. */
interface Cell {
  readonly path: string;
  readonly action: string;
  readonly as: string;
  /** The body, or how to make it from the answers so far (by route label). */
  readonly body: Record<string, unknown> | ((answers: ReadonlyMap<string, unknown>) => unknown);
  readonly status: number;
}

function labelOf(path: string, action: string): string {
  return action ? `${path}?${action}` : path;
}

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** Every route once, in an order where each finds what it needs, as the caller it admits. */
const ALLOWED: readonly Cell[] = [
  { path: PATHS.secrets, action: "", as: SUPERUSER, body: { path: "app/db", values: { a: "1" } }, status: 200 },
  { path: PATHS.secrets, action: "patch", as: SUPERUSER, body: { path: "app/db", values: { b: "2" } }, status: 200 },
  { path: PATHS.secrets, action: "get", as: SUPERUSER, body: { path: "app/db" }, status: 200 },
  { path: PATHS.secrets, action: "getMany", as: SUPERUSER, body: { paths: ["app/db", "app/none"] }, status: 200 },
  { path: PATHS.secretsMetadata, action: "get", as: SUPERUSER, body: { path: "app/db" }, status: 200 },
  {
    path: PATHS.secretsMetadata,
    action: "",
    as: SUPERUSER,
    body: { path: "app/db", customMetadata: { team: "x" } },
    status: 200,
  },
  { path: PATHS.secrets, action: "list", as: SUPERUSER, body: {}, status: 200 },
  { path: PATHS.secrets, action: "delete", as: SUPERUSER, body: { path: "app/db", versions: [] }, status: 200 },
  { path: PATHS.secrets, action: "undelete", as: SUPERUSER, body: { path: "app/db", versions: [2] }, status: 200 },
  { path: PATHS.secrets, action: "destroy", as: SUPERUSER, body: { path: "app/db", versions: [1] }, status: 200 },
  { path: PATHS.secrets, action: "move", as: SUPERUSER, body: { from: "app/db", to: "app/moved" }, status: 200 },
  { path: PATHS.secretsMetadata, action: "delete", as: SUPERUSER, body: { path: "app/moved" }, status: 200 },
  {
    path: PATHS.policy,
    action: "",
    as: SUPERUSER,
    body: { name: "p", spiffeidPattern: "^spiffe://spike\\.ist/x$", pathPattern: "^y$", permissions: ["read"] },
    status: 200,
  },
  { path: PATHS.policy, action: "get", as: SUPERUSER, body: { id: "p" }, status: 200 },
  { path: PATHS.policy, action: "list", as: SUPERUSER, body: {}, status: 200 },
  { path: PATHS.policy, action: "delete", as: SUPERUSER, body: { id: "p" }, status: 200 },
  { path: PATHS.encrypt, action: "", as: SUPERUSER, body: { plaintext: btoa("hi") }, status: 200 },
  { path: PATHS.decrypt, action: "", as: SUPERUSER, body: (answers) => answers.get(PATHS.encrypt), status: 200 },
  { path: PATHS.recover, action: "", as: RECOVER, body: {}, status: 200 },
  {
    path: PATHS.restore,
    action: "",
    as: RESTORE,
    body: (answers) => ({
      id: 1,
      shard: (answers.get(PATHS.recover) as { shards: Record<string, number[]> }).shards["1"],
    }),
    status: 200,
  },
  {
    path: PATHS.bootstrapVerify,
    action: "",
    as: BOOTSTRAP,
    body: async () => {
      const nonce = crypto.getRandomValues(new Uint8Array(12));
      const ciphertext = await encryptGcm(fixedRootKey(), nonce, new TextEncoder().encode("x"), new Uint8Array(0));
      return { nonce: b64(nonce), ciphertext: b64(ciphertext) };
    },
    status: 200,
  },
  { path: PATHS.auditVerify, action: "", as: SUPERUSER, body: { records: ["not a record"] }, status: 200 },
  // No Keepers here: rotation is refused with a reason the client sees (tests/rotation_test.ts rotates for real).
  { path: PATHS.rotate, action: "", as: SUPERUSER, body: {}, status: 400 },
  { path: PATHS.keyStatus, action: "", as: SUPERUSER, body: {}, status: 200 },
];

/** What a caller without any policy or role gets: 401 before anything is read (a batch read answers per path). */
function refusedStatus(cell: Cell): number {
  return cell.action === "getMany" && cell.path === PATHS.secrets ? 200 : 401;
}

function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

Deno.test("every route over mTLS: served to its caller, refused before any read without a grant, audited and metered once per request", async () => {
  const ca = await devCa();
  const fixture = await startMtlsNexus(ca, { env: { SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL: "0" } });
  const transports = new Map<string, MtlsClient>();
  const transport = async (spiffeId: string) => {
    let client = transports.get(spiffeId);
    if (client === undefined) {
      client = createMtlsClient({
        identity: createStaticSource(await ca.issue(spiffeId)),
        serverId: (id) => isNexus(id),
        timeoutMs: 30_000,
      });
      transports.set(spiffeId, client);
    }
    return client;
  };
  const metrics = async () => {
    const response = await (await transport(SUPERUSER)).request("GET", `${fixture.url}/metrics`);
    assert.equal(response.status, 200);
    return new TextDecoder().decode(response.body);
  };
  try {
    const covered = new Set(ALLOWED.map((cell) => labelOf(cell.path, cell.action)));
    const served = NEXUS_ROUTES.map((route) => labelOf(route.path, route.action));
    assert.deepEqual([...covered].sort(), [...served].sort(), "one cell per route the app serves");

    const expectedCounts = new Map<string, number>();
    const answers = new Map<string, unknown>();
    const call = async (cell: Cell, as: string, status: number) => {
      const label = labelOf(cell.path, cell.action);
      const body = typeof cell.body === "function" ? await cell.body(answers) : cell.body;
      const before = fixture.audit.length;
      const response = await (await transport(as)).post(
        `${fixture.url}${label.replace("?", "?action=")}`,
        JSON.stringify(body),
        { "content-type": "application/json" },
      );
      const text = new TextDecoder().decode(response.body);
      assert.equal(response.status, status, `${label} as ${as}: ${text}`);
      assert.equal(response.headers["cache-control"], "no-store, no-cache, must-revalidate, private", label);
      const records = fixture.audit.slice(before);
      assert.equal(records.length, 1, `${label}: one audit record`);
      const record = records[0]!;
      assert.equal(record.route, cell.path);
      assert.equal(record.action, cell.action);
      assert.equal(record.status, status);
      assert.equal(record.spiffeId, as);
      const key = `${label}|${status}`;
      expectedCounts.set(key, (expectedCounts.get(key) ?? 0) + 1);
      return JSON.parse(text);
    };

    for (const cell of ALLOWED) answers.set(labelOf(cell.path, cell.action), await call(cell, cell.as, cell.status));
    const many = answers.get(`${PATHS.secrets}?getMany`) as { results: Record<string, unknown> };
    assert.deepEqual(many.results, { "app/db": { data: { a: "1", b: "2" } }, "app/none": { err: "api_not_found" } });
    const rotate = answers.get(PATHS.rotate) as { err: string; reason?: string };
    assert.equal(rotate.err, "api_bad_request");
    assert.match(rotate.reason ?? "", /Keepers/, "the refusal's reason reaches the client");

    // A caller without a grant: refused before any secret or policy is touched.
    const opsBefore = await metrics();
    for (const cell of ALLOWED) {
      const answer = await call(cell, NO_GRANT, refusedStatus(cell));
      if (refusedStatus(cell) === 401) assert.deepEqual(answer, { err: "access_unauthorized" });
      else {assert.deepEqual(answer, {
          results: { "app/db": { err: "access_unauthorized" }, "app/none": { err: "access_unauthorized" } },
        });}
    }
    const opsAfter = await metrics();
    for (const operation of DATA_OPERATIONS) {
      const series = `spike_nexus_store_operation_duration_seconds_count{operation="${operation}"}`;
      assert.equal(sample(opsAfter, series), sample(opsBefore, series), `${operation} called for a refused caller`);
    }
    const refusedAudit = fixture.audit.slice(-ALLOWED.length);
    const batch = refusedAudit.find((r) => r.action === "getMany")!;
    assert.deepEqual(batch.resources?.map((r) => r.outcome), ["denied", "denied"]);

    for (const [key, count] of expectedCounts) {
      const [label, code] = key.split("|");
      assert.equal(sample(opsAfter, `spike_nexus_requests_total{route="${label}",code="${code}"}`), count, key);
    }
  } finally {
    for (const client of transports.values()) client.close();
    await fixture.close();
  }
});
