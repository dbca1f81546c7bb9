/**
 * The test suite's entry point (`deno task test`): starts a throwaway
 * PostgreSQL cluster (TLS on, its CA in `SPIKE_TEST_POSTGRES_CA_FILE`) unless
 * `SPIKE_TEST_POSTGRES_URL` already names a server, runs `deno test` with the
 * suite's flags and any arguments given (a file, a `--filter`), stops the
 * cluster and exits with the tests' exit code.
 *
 * Tests that need Postgres make their own database on that server (see
 * `tests/support/postgres_db.ts`), so they run in parallel without sharing
 * data.
 *
 * @module
 */
import { type PostgresCluster, startPostgresCluster } from "./support/postgres_cluster.ts";

/** Flags of every suite run: the children get `--allow-all` too (see support/process.ts). */
const TEST_FLAGS = [
  "test",
  "--allow-all",
  "--v8-flags=--enable-experimental-regexp-engine",
  // Unix datagram sockets (the systemd notification tests) are unstable Deno API.
  "--unstable-net",
  "--parallel",
];

async function main(args: string[]): Promise<number> {
  let cluster: PostgresCluster | undefined;
  const env: Record<string, string> = {};
  if (!Deno.env.get("SPIKE_TEST_POSTGRES_URL")) {
    cluster = await startPostgresCluster();
    env.SPIKE_TEST_POSTGRES_URL = cluster.url;
    env.SPIKE_TEST_POSTGRES_CA_FILE = cluster.caFile;
  }
  const child = new Deno.Command(Deno.execPath(), { args: [...TEST_FLAGS, ...args], env }).spawn();
  // Ctrl-C reaches the test process too (same process group); wait for it, then clean up.
  const ignore = () => {};
  Deno.addSignalListener("SIGINT", ignore);
  try {
    return (await child.status).code;
  } finally {
    Deno.removeSignalListener("SIGINT", ignore);
    await cluster?.stop();
  }
}

Deno.exit(await main(Deno.args));
