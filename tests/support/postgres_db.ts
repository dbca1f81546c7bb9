/**
 * A fresh, empty Postgres database per test on the suite's server
 * (`SPIKE_TEST_POSTGRES_URL`, set by `deno task test`), dropped afterwards.
 *
 * @module
 */
import postgres from "postgres";

/** A database made for one test. */
export interface TestDatabase {
  /** Connection URL of the new database. */
  readonly url: string;
  /** Drops the database, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

/** The suite's server URL; throws a clear message when the suite was not started through `deno task test`. */
export function testPostgresUrl(): string {
  const url = Deno.env.get("SPIKE_TEST_POSTGRES_URL");
  if (!url) {
    throw new Error(
      "SPIKE_TEST_POSTGRES_URL is not set: run the suite with `deno task test` (it starts a throwaway " +
        "PostgreSQL), or set it to a server where this user may create databases",
    );
  }
  return url;
}

/** PEM file of the CA of the suite's server (`SPIKE_TEST_POSTGRES_CA_FILE`, set by `deno task test`). */
export function testPostgresCaFile(): string {
  const file = Deno.env.get("SPIKE_TEST_POSTGRES_CA_FILE");
  if (!file) {
    throw new Error(
      "SPIKE_TEST_POSTGRES_CA_FILE is not set: run the suite with `deno task test`, or point it at the PEM of " +
        "the CA that signed your server's certificate (for the name localhost)",
    );
  }
  return file;
}

/** Creates an empty database named `spike_test_<random>` and returns its URL. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = testPostgresUrl();
  const name = `spike_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await sql.end();
      }
    },
  };
}
