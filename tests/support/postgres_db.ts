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

/** A variable `deno task test` sets; throws saying so, and what else would do, when it is missing. */
function suiteSetting(name: string, otherwise: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(
      `${name} is not set: run the suite with \`deno task test\` (it starts a throwaway PostgreSQL), or ${otherwise}`,
    );
  }
  return value;
}

/** The suite's server URL (`SPIKE_TEST_POSTGRES_URL`). */
export function testPostgresUrl(): string {
  return suiteSetting("SPIKE_TEST_POSTGRES_URL", "set it to a server where this user may create databases");
}

/** PEM file of the CA of the suite's server (`SPIKE_TEST_POSTGRES_CA_FILE`). */
export function testPostgresCaFile(): string {
  return suiteSetting(
    "SPIKE_TEST_POSTGRES_CA_FILE",
    "point it at the CA of your server's certificate (name: localhost)",
  );
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
