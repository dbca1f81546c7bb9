/**
 * An example service: it gets its database credentials from spike, with its
 * SPIFFE identity as the only credential it starts with, connects to
 * PostgreSQL with them, and reconnects when a new version of the secret is
 * written. The password is never printed or served.
 *
 * Settings (environment):
 * - `SPIKE_NEXUS_API_URL`, and `SPIKE_SVID_DIR` or `SPIFFE_ENDPOINT_SOCKET`: see docs/SDK.md.
 * - `DB_SECRET_PATH`: the secret holding `user` and `pass` (default `app/db`).
 * - `DB_URL`: the database without credentials, e.g. `postgres://db:5432/app?sslmode=require`.
 * - `PORT`: where `GET /` reports the database connection (default 8080; `127.0.0.1` only unless `HOST` says otherwise).
 * - `WATCH_INTERVAL_MS`: how often spike is asked for a new version (default 30000).
 */
import http from "node:http";
import process from "node:process";
import postgres from "postgres";
import { connect } from "@spike/sdk";

const env = process.env;
const secretPath = env.DB_SECRET_PATH || "app/db";
const dbUrl = env.DB_URL;
if (!dbUrl) {
  console.error("DB_URL is not set (e.g. postgres://localhost:5432/app)");
  process.exit(2);
}

/** @type {{ sql: import("postgres").Sql, user: string, version: number, serverVersion: string } | undefined} */
let db;
/** The newest credentials spike gave us (the database may not take them yet). */
let latest;
/** Connection attempts run one at a time, in order. */
let attempts = Promise.resolve();
/** Set while waiting to try again after a failed connection. */
let retryTimer;
let stopping = false;
const RETRY_MS = 2000;

/** Connects with the newest credentials unless already connected with them; the old pool is closed once the new one works. */
function connectWithLatest() {
  attempts = attempts.then(async () => {
    const wanted = latest;
    if (!wanted || stopping || db?.version === wanted.version) return;
    const sql = postgres(dbUrl, { username: wanted.user, password: wanted.pass, max: 4, onnotice: () => {} });
    try {
      const [row] = await sql`select current_user as "user", current_setting('server_version') as "serverVersion"`;
      const previous = db;
      db = { sql, user: row.user, version: wanted.version, serverVersion: row.serverVersion };
      console.log(`connected to the database as ${row.user} (credentials version ${wanted.version} of ${secretPath})`);
      await previous?.sql.end({ timeout: 5 });
    } catch (error) {
      await sql.end({ timeout: 1 });
      // The database may be starting, or the new user not created yet: try again until a newer version arrives.
      console.error(`could not connect with version ${wanted.version} of ${secretPath}: ${error.message}; retrying`);
      clearTimeout(retryTimer);
      if (!stopping) retryTimer = setTimeout(connectWithLatest, RETRY_MS);
    }
  });
  return attempts;
}

/** Called by the SDK with the current version of the secret, then with each new one. */
async function useCredentials(values, { version }) {
  if (!values.user || !values.pass) {
    console.error(`${secretPath} version ${version} lacks "user" or "pass"; keeping the current connection`);
    return;
  }
  latest = { user: values.user, pass: values.pass, version };
  clearTimeout(retryTimer);
  await connectWithLatest();
}

const spike = await connect({ env }).catch((error) => {
  // No SVID (yet), a bad setting: say which, and let the supervisor restart us.
  console.error(`cannot connect to spike: ${error.message}`);
  process.exit(1);
});
console.log(`connected to spike as ${spike.spiffeId()}`);
const watch = spike.watchSecret(secretPath, useCredentials, {
  intervalMs: Number(env.WATCH_INTERVAL_MS || 30_000),
  onError: (error) => console.error(`reading ${secretPath} from spike: ${error.message}`),
});

const server = http.createServer(async (request, response) => {
  const reply = (status, body) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body) + "\n");
  };
  if (request.method !== "GET" || request.url !== "/") return reply(404, { error: "not found" });
  if (!db) return reply(503, { database: "not connected", secretPath });
  try {
    const [row] = await db.sql`select current_user as "user"`;
    reply(200, {
      database: "connected",
      user: row.user,
      credentialsVersion: db.version,
      serverVersion: db.serverVersion,
    });
  } catch (error) {
    reply(503, { database: "error", error: error.message });
  }
});
server.listen(Number(env.PORT || 8080), env.HOST || "127.0.0.1", () => {
  console.log(`listening on http://${env.HOST || "127.0.0.1"}:${server.address().port}`);
});

async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: shutting down`);
  clearTimeout(retryTimer);
  server.close();
  await watch.stop();
  await spike.close();
  await attempts;
  await db?.sql.end({ timeout: 5 });
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
