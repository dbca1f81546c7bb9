/**
 * A throwaway PostgreSQL cluster for the test suite: `initdb` into a temp
 * directory, the server on a free loopback port with its socket in that
 * directory, trust authentication for one superuser, and everything removed
 * on `stop()`. `initdb` refuses to run as root, so as root the cluster runs
 * as the `postgres` system user (through `runuser`).
 *
 * Durability settings are off unless asked for (`fsync`,
 * `synchronous_commit`, `full_page_writes`): a test cluster holds throwaway
 * data; the store's own durability is Postgres' business in production.
 *
 * @module
 */
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { exists } from "./files.ts";
import { makeServerTls } from "./server_tls.ts";

/** A running test cluster. */
export interface PostgresCluster {
  /** `postgres://spike@127.0.0.1:<port>/postgres` (trust auth, no password). */
  readonly url: string;
  /**
   * PEM file of the CA that signed the server's TLS certificate, which names
   * `localhost` only: TLS is on (and optional), so clients can test
   * `verify-full` against `localhost` and a name mismatch against 127.0.0.1.
   */
  readonly caFile: string;
  /** Stops the server (fast shutdown) and deletes its directory. */
  stop(): Promise<void>;
}

/** Server binaries to try, newest first, when `initdb` is not on PATH. */
async function findBinDir(): Promise<string> {
  const override = Deno.env.get("SPIKE_TEST_PG_BINDIR");
  if (override) return override;
  const versions: number[] = [];
  try {
    for await (const entry of Deno.readDir("/usr/lib/postgresql")) {
      if (/^\d+$/.test(entry.name)) versions.push(Number(entry.name));
    }
  } catch { /* not Debian's layout */ }
  for (const version of versions.sort((a, b) => b - a)) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (await exists(join(dir, "initdb"))) return dir;
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && await exists(join(dir, "initdb")) && await exists(join(dir, "postgres"))) return dir;
  }
  throw new Error(
    "PostgreSQL server binaries (initdb, postgres) not found: install PostgreSQL " +
      "(Debian: apt-get install postgresql), set SPIKE_TEST_PG_BINDIR, or point SPIKE_TEST_POSTGRES_URL at a server",
  );
}

/** The uid and gid of the `postgres` system user. */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  const line = passwd.split("\n").find((l) => l.startsWith("postgres:"));
  if (!line) throw new Error("running as root, but there is no 'postgres' user to run the test cluster as");
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** Runs `argv`, as the postgres user when we are root; throws with its output on failure. */
async function run(argv: string[], asPostgres: boolean): Promise<void> {
  const [cmd, ...args] = asPostgres ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  const out = await new Deno.Command(cmd!, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) || new TextDecoder().decode(out.stdout);
    throw new Error(`${argv[0]} failed (exit ${out.code}): ${text.trim()}`);
  }
}

/** Options of {@linkcode startPostgresCluster}. */
export interface PostgresClusterOptions {
  /**
   * Keep Postgres' production durability (`fsync`, `synchronous_commit`,
   * `full_page_writes` on), for benchmarks that compare it with SQLite's
   * `synchronous=FULL`. Tests leave it off: their data is thrown away.
   */
  readonly durable?: boolean;
}

/** Starts a cluster and resolves once it accepts connections. */
export async function startPostgresCluster(options: PostgresClusterOptions = {}): Promise<PostgresCluster> {
  const bin = await findBinDir();
  const asPostgres = Deno.uid() === 0;
  const dir = await Deno.makeTempDir({ prefix: "spike_pg_" });
  const data = join(dir, "data");
  const tls = await makeServerTls(["localhost"]);
  const caFile = join(dir, "ca.pem");
  await Deno.writeTextFile(caFile, tls.caPem);
  await Deno.writeTextFile(join(dir, "server.crt"), tls.certPem);
  await Deno.writeTextFile(join(dir, "server.key"), tls.keyPem, { mode: 0o600 });
  if (asPostgres) {
    const { uid, gid } = await postgresUser();
    for (const path of [dir, join(dir, "server.crt"), join(dir, "server.key")]) await Deno.chown(path, uid, gid);
  }
  const pgCtl = (...args: string[]) => run([join(bin, "pg_ctl"), "-D", data, ...args], asPostgres);
  let started = false;
  try {
    await run([join(bin, "initdb"), "-D", data, "-U", "spike", "-A", "trust", "-E", "UTF8", "--no-sync"], asPostgres);
    const port = freePort();
    const serverOptions = [
      `-p ${port}`,
      `-k ${dir}`,
      // Both loopbacks, so "localhost" answers whichever a client tries first.
      "-c listen_addresses='127.0.0.1,::1'",
      "-c ssl=on",
      `-c ssl_cert_file=${join(dir, "server.crt")}`,
      `-c ssl_key_file=${join(dir, "server.key")}`,
      ...(options.durable ? [] : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
      "-c max_connections=300",
    ].join(" ");
    // pg_ctl -w returns once the server accepts connections (or failed to start).
    await pgCtl("-l", join(dir, "server.log"), "-o", serverOptions, "-w", "-t", "60", "start");
    started = true;
    return {
      url: `postgres://spike@127.0.0.1:${port}/postgres`,
      caFile,
      async stop() {
        await pgCtl("-m", "fast", "-w", "stop");
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (error) {
    if (started) await pgCtl("-m", "immediate", "-w", "stop").catch(() => {});
    const log = await Deno.readTextFile(join(dir, "server.log")).catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw log ? new Error(`${(error as Error).message}\nserver log:\n${log.slice(-4000)}`) : error;
  }
}
