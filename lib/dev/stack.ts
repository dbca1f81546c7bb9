/**
 * `spike dev`: the whole stack on one machine. Mints identities from a
 * development CA, starts three Keepers and Nexus as child processes (each
 * with its role's least Deno permissions), gives Nexus its root key —
 * through Bootstrap on the first run, from the saved recovery shards on
 * later runs — and writes `pilot.env` for the operator CLI.
 *
 * @module
 */
import { join } from "node:path";
import { NexusClient } from "../client/nexus_client.ts";
import { netTarget } from "../config/permissions.ts";
import { createMtlsClient } from "../spiffe/mtls_client.ts";
import { isNexus, trustRoots } from "../spiffe/roles.ts";
import { createStaticSource } from "../spiffe/static_source.ts";
import type { X509Identity } from "../spiffe/identity.ts";
import { mintDevIdentities } from "./identities.ts";
import { type RoleProcess, type SpikeLauncher, startRoleProcess } from "./role_process.ts";
import { DevStackError } from "./errors.ts";
import { waitForHealth } from "./health.ts";
import { readSavedShards, restoreFromShards, saveRecoveryShards } from "./recovery_shards.ts";

/** Settings of the dev stack. */
export interface DevStackOptions {
  /** State directory (CA, identities, data, recovery shards, pilot.env). */
  readonly dir: string;
  /** Nexus port on 127.0.0.1. */
  readonly nexusPort: number;
  /** Keeper ports on 127.0.0.1 (one Keeper each; threshold is 2). */
  readonly keeperPorts: readonly number[];
  /** Trust domain of every identity. */
  readonly trustDomain: string;
  /** Keeper push interval (Go duration), e.g. `5m`. */
  readonly keeperUpdateInterval: string;
  /** How children are launched. */
  readonly launcher: SpikeLauncher;
  /** Variables every child inherits (PATH, HOME, DENO_DIR, ...). */
  readonly baseEnv: Record<string, string>;
  /** Where child output and progress lines go (stderr). */
  readonly log: (line: string) => void;
}

/** A running dev stack. */
export interface DevStack {
  /** Nexus URL. */
  readonly nexusUrl: string;
  /** The file of `export` lines for the operator CLI. */
  readonly pilotEnvFile: string;
  /** Nexus's audit trail (kept in a file so the console stays readable). */
  readonly auditFile: string;
  /** Resolves with a reason if any child exits on its own. */
  readonly failed: Promise<string>;
  /** Stops every child. */
  stop(): Promise<void>;
}

const THRESHOLD = 2;

/** Starts the dev stack; resolves once Nexus is ready. */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const { dir, trustDomain, log } = options;
  const keepers = options.keeperPorts.length;
  if (keepers < THRESHOLD) throw new DevStackError(`the dev stack needs at least ${THRESHOLD} Keepers`);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const allPorts = [options.nexusPort, ...options.keeperPorts];
  if (new Set(allPorts).size !== allPorts.length) throw new DevStackError("the Nexus and Keeper ports must differ");
  checkPortFree(options.nexusPort, "Nexus", "--nexus-port");
  for (const port of options.keeperPorts) checkPortFree(port, "a Keeper", "--keeper-ports");

  const dataDir = join(dir, "data");
  const recoveryDir = join(dir, "recovery");
  const auditFile = join(dir, "audit.log");
  const saved = await readSavedShards(recoveryDir);
  const hasData = await exists(join(dataDir, "spike.db"));
  if (hasData && saved.length < THRESHOLD) {
    throw new DevStackError(
      `${dataDir} holds data but ${recoveryDir} has fewer than ${THRESHOLD} recovery shards, so its root key ` +
        `cannot be rebuilt; remove ${dir} to start over`,
    );
  }

  log(`spike dev: state in ${dir}`);
  const ids = await mintDevIdentities(dir, trustDomain, keepers);
  const host = "127.0.0.1";
  const nexusUrl = `https://${host}:${options.nexusPort}`;
  const keeperUrls = options.keeperPorts.map((port) => `https://${host}:${port}`);
  const trustEnv: Record<string, string> = trustDomain === "spike.ist" ? {} : {
    SPIKE_TRUST_ROOT_NEXUS: trustDomain,
    SPIKE_TRUST_ROOT_KEEPER: trustDomain,
    SPIKE_TRUST_ROOT_PILOT: trustDomain,
    SPIKE_TRUST_ROOT_BOOTSTRAP: trustDomain,
    SPIKE_TRUST_ROOT_LITE_WORKLOAD: trustDomain,
  };
  const children: RoleProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map((c) => c.stop()));
  };

  try {
    options.keeperPorts.forEach((port, i) => {
      const name = `keeper-${i + 1}`;
      children.push(startRoleProcess({
        name,
        role: "keeper",
        args: ["keeper"],
        env: {
          ...options.baseEnv,
          ...trustEnv,
          SPIKE_SVID_DIR: ids.dirOf(name),
          SPIKE_KEEPER_TLS_PORT: `${host}:${port}`,
        },
        resources: { svidDir: ids.dirOf(name), listen: `${host}:${port}` },
        launcher: options.launcher,
        relay: log,
      }));
    });
    const nexus = startRoleProcess({
      name: "nexus",
      role: "nexus",
      args: ["nexus"],
      env: {
        ...options.baseEnv,
        ...trustEnv,
        SPIKE_SVID_DIR: ids.dirOf("nexus"),
        SPIKE_NEXUS_TLS_PORT: `${host}:${options.nexusPort}`,
        SPIKE_NEXUS_DATA_DIR: dataDir,
        SPIKE_NEXUS_BACKEND_STORE: "sqlite",
        SPIKE_NEXUS_KEEPER_PEERS: keeperUrls.join(","),
        SPIKE_NEXUS_SHAMIR_SHARES: String(keepers),
        SPIKE_NEXUS_SHAMIR_THRESHOLD: String(THRESHOLD),
        SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: options.keeperUpdateInterval,
        SPIKE_NEXUS_AUDIT_LOG: auditFile,
      },
      resources: {
        svidDir: ids.dirOf("nexus"),
        dataDir,
        writeFiles: [auditFile],
        listen: `${host}:${options.nexusPort}`,
        connect: keeperUrls.map(netTarget),
      },
      launcher: options.launcher,
      relay: log,
    });
    children.push(nexus);

    for (const [i, port] of options.keeperPorts.entries()) await waitForHealth(port, children[i]!, 60_000);
    await waitForHealth(options.nexusPort, nexus, 60_000);

    if (saved.length >= THRESHOLD) {
      log("spike dev: restoring the root key from the saved recovery shards (development only)");
      const client = pilotClient(nexusUrl, ids.byName.get("pilot-restore")!, trustDomain);
      try {
        await restoreFromShards(client.nexus, saved, THRESHOLD);
      } finally {
        client.close();
      }
    } else {
      log("spike dev: first run: bootstrapping a new root key");
      const bootstrap = startRoleProcess({
        name: "bootstrap",
        role: "bootstrap",
        args: ["bootstrap"],
        env: {
          ...options.baseEnv,
          ...trustEnv,
          SPIKE_SVID_DIR: ids.dirOf("bootstrap"),
          SPIKE_NEXUS_API_URL: nexusUrl,
          SPIKE_NEXUS_KEEPER_PEERS: keeperUrls.join(","),
          SPIKE_NEXUS_SHAMIR_SHARES: String(keepers),
          SPIKE_NEXUS_SHAMIR_THRESHOLD: String(THRESHOLD),
          SPIKE_BOOTSTRAP_TIMEOUT: "90s",
        },
        resources: { svidDir: ids.dirOf("bootstrap"), connect: [netTarget(nexusUrl), ...keeperUrls.map(netTarget)] },
        launcher: options.launcher,
        relay: log,
      });
      const status = await bootstrap.exited;
      if (!status.success) throw new DevStackError(`bootstrap failed (exit ${status.code}):\n${bootstrap.tail()}`);
      const client = pilotClient(nexusUrl, ids.byName.get("pilot-recover")!, trustDomain);
      try {
        await saveRecoveryShards(client.nexus, recoveryDir);
      } finally {
        client.close();
      }
      log(
        `spike dev: WARNING: recovery shards saved in ${recoveryDir} so restarts keep your data; ` +
          "this is for development only — never keep shards beside the data in production",
      );
    }
    await waitForHealth(options.nexusPort, nexus, 60_000, "/ready");

    const pilotEnvFile = join(dir, "pilot.env");
    await writePilotEnv(pilotEnvFile, {
      SPIKE_SVID_DIR: ids.dirOf("pilot-superuser"),
      SPIKE_NEXUS_API_URL: nexusUrl,
      ...trustEnv,
    });

    const failed = Promise.race(children.map(async (child) => {
      const status = await child.exited;
      return `${child.name} exited (code ${status.code}):\n${child.tail()}`;
    }));
    return { nexusUrl, pilotEnvFile, auditFile, failed, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function checkPortFree(port: number, what: string, flag: string): void {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new DevStackError(
        `port ${port} (for ${what}) is already in use; is another 'spike dev' running? ` +
          `Pick another port with ${flag}`,
      );
    }
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function pilotClient(nexusUrl: string, identity: X509Identity, trustDomain: string) {
  const roots = trustRoots({ nexus: [trustDomain] });
  const transport = createMtlsClient({
    identity: createStaticSource(identity),
    serverId: (id) => isNexus(id, roots),
    timeoutMs: 10_000,
  });
  return { nexus: new NexusClient(nexusUrl, transport), close: () => transport.close() };
}

async function writePilotEnv(file: string, vars: Record<string, string>): Promise<void> {
  const quote = (value: string) => `'${value.replaceAll("'", `'"'"'`)}'`;
  const lines = Object.entries(vars).map(([name, value]) => `export ${name}=${quote(value)}`);
  await Deno.writeTextFile(
    file,
    `# spike dev: source this file to use the CLI as the Pilot superuser\n${lines.join("\n")}\n`,
    {
      mode: 0o600,
    },
  );
}
