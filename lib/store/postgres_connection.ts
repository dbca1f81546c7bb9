/**
 * Opens a `postgres` connection pool with the settings every spike
 * connection to the shared backend uses: timeouts, and TLS that verifies the
 * server when a CA is given or the URL asks for `verify-full`. The store and
 * the backup commands both connect through here.
 *
 * @module
 */
import postgres, { type Sql } from "postgres";

/** Options of the Postgres store. */
export interface PostgresStoreOptions {
  /** `postgres://user[:password]@host[:port]/database[?sslmode=…]`. */
  readonly url: string;
  /** Password when not in the URL (e.g. read from a file by the caller). */
  readonly password?: string;
  /**
   * PEM of the CA(s) that sign the server's certificate. When given, every
   * connection uses TLS and verifies the certificate and that it names the
   * host of `url`, whatever `sslmode` the URL says.
   */
  readonly caPem?: string;
  /** Most connections the pool opens (default 10). */
  readonly maxConnections?: number;
  /** Seconds to wait for a new connection before the call fails (default 10). */
  readonly connectTimeoutSeconds?: number;
  /**
   * Longest a statement may run, waiting for locks included, in ms (default
   * 10 000): a stuck transaction elsewhere fails a call instead of hanging it.
   */
  readonly statementTimeoutMs?: number;
}

/**
 * TLS options that verify the server: against `caPem` when given, else
 * against Deno's root store when the URL says `sslmode=verify-full`; other
 * modes are left to the driver. The host is named explicitly because the
 * driver leaves the TLS server name unset for an IP address, and the TLS
 * layer would then check the certificate against "localhost".
 */
function verifiedTls(url: string, caPem: string | undefined): object | undefined {
  const parsed = new URL(url);
  if (caPem === undefined && parsed.searchParams.get("sslmode") !== "verify-full") return undefined;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return { rejectUnauthorized: true, host, ...(caPem === undefined ? {} : { ca: caPem }) };
}

/**
 * A connection pool to `options.url` (lazy: nothing connects before the
 * first query). `maxConnections` defaults to 10; `settings` are further
 * session settings of every connection (e.g. `synchronous_commit`).
 */
export function connectPostgres(
  options: PostgresStoreOptions,
  settings: Readonly<Record<string, string | number>> = {},
): Sql {
  const tls = verifiedTls(options.url, options.caPem);
  return postgres(options.url, {
    max: options.maxConnections ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    connection: { statement_timeout: options.statementTimeoutMs ?? 10_000, ...settings },
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(tls === undefined ? {} : { ssl: tls }),
    onnotice: () => {},
  });
}
