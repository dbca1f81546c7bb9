/**
 * `spike dev identities`: the development CA as a service (the compose
 * demo's `identity` container): mints every role's SVID, and with `--renew`
 * keeps renewing them before half their lifetime; `--check` is its health
 * check.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { ConfigError, parseDuration } from "../lib/config/parse.ts";
import type { IdentityServiceOptions } from "../lib/dev/identity_service.ts";
import { checkTrustDomainName } from "../lib/spiffe/id.ts";

/** The `dev identities` command. */
export const devIdentitiesCommand: CommandSpec = {
  name: "identities",
  summary: "Mint (and with --renew keep renewing) every role's SVID from the development CA",
  details: "Writes <out>/<name>/svid.pem, svid_key.pem and svid_bundle.pem for nexus, keeper-1..N, bootstrap,\n" +
    "pilot-superuser, pilot-recover, pilot-restore and each --workload. With --renew it stays running and\n" +
    "mints them all again whenever half of --ttl has passed (files are replaced atomically; the roles pick\n" +
    "the new ones up by themselves); SIGTERM stops it. --check mints nothing and exits 0 only when every\n" +
    "SVID is in place and valid for at least a quarter of --ttl (a health check).\n" +
    "For development and demos only: the CA key is a plain file in --dir.",
  positionals: { min: 0, max: 0 },
  options: {
    dir: { type: "string", description: "CA directory (created if missing)", valueName: "ca-dir" },
    out: { type: "string", description: "Directory to write one SVID directory per identity into", valueName: "dir" },
    "trust-domain": { type: "string", description: "Trust domain (default spike.ist)", valueName: "name" },
    keepers: { type: "string", description: "Number of Keepers (default 3)", valueName: "n" },
    workload: {
      type: "string",
      multiple: true,
      description: "Also mint <name> as spiffe://<trust-domain>/<path> (repeatable)",
      valueName: "name=path",
    },
    ttl: { type: "string", description: "SVID lifetime, e.g. 1h (default 24h)", valueName: "duration" },
    renew: { type: "boolean", description: "Stay running and renew every SVID before half its lifetime" },
    check: { type: "boolean", description: "Mint nothing: exit 0 only when every SVID is present and fresh" },
  },
  run: async ({ options, io }) => {
    // Loaded when the command runs, not with the command tree (the dev CA pulls in the X.509 library).
    const { checkIdentities, mintAll, startRenewal } = await import("../lib/dev/identity_service.ts");
    const settings = identitySettings(options);
    if (options.check && options.renew) throw new UsageError("--check and --renew do not go together");
    if (options.check) {
      const problems = await checkIdentities(settings, (settings.ttlSeconds * 1000) / 4);
      if (problems.length > 0) throw new CliError(`identities not ready:\n  ${problems.join("\n  ")}`);
      io.stdout(`all SVIDs in ${settings.outDir} are in place\n`);
      return 0;
    }
    if (!options.renew) {
      const expires = await fail(() => mintAll(settings));
      io.stderr(`minted every SVID into ${settings.outDir}, valid until ${new Date(expires).toISOString()}\n`);
      return 0;
    }
    const renewal = await fail(() => startRenewal(settings, (line) => io.stderr(`spike dev identities: ${line}\n`)));
    await new Promise<void>((resolve) => {
      Deno.addSignalListener("SIGINT", resolve);
      Deno.addSignalListener("SIGTERM", resolve);
    });
    await renewal.stop();
    io.stderr("spike dev identities: stopped\n");
    return 0;
  },
};

function identitySettings(options: Readonly<Record<string, unknown>>): IdentityServiceOptions {
  const caDir = options.dir as string | undefined;
  const outDir = options.out as string | undefined;
  if (!caDir) throw new UsageError("--dir is required");
  if (!outDir) throw new UsageError("--out is required");
  const trustDomain = (options["trust-domain"] as string | undefined) ?? "spike.ist";
  try {
    checkTrustDomainName(trustDomain);
  } catch (error) {
    throw new UsageError(`--trust-domain: ${(error as Error).message}`);
  }
  const keepersText = (options.keepers as string | undefined) ?? "3";
  if (!/^\d{1,3}$/.test(keepersText) || Number(keepersText) < 1) {
    throw new UsageError(`--keepers: '${keepersText}' is not a number from 1 to 999`);
  }
  const workloads: Record<string, string> = {};
  for (const spec of (options.workload as string[] | undefined) ?? []) {
    const match = /^([a-z0-9][a-z0-9_.-]*)=([A-Za-z0-9._~/-]+)$/.exec(spec);
    if (!match || match[2]!.startsWith("/") || match[2]!.endsWith("/") || match[2]!.includes("//")) {
      throw new UsageError(`--workload takes name=path, e.g. node-service=app/node-service; got '${spec}'`);
    }
    if (Object.hasOwn(workloads, match[1]!)) throw new UsageError(`--workload ${match[1]} is given twice`);
    workloads[match[1]!] = match[2]!;
  }
  let ttlSeconds = 24 * 3600;
  if (options.ttl !== undefined) {
    try {
      ttlSeconds = Math.ceil(parseDuration("--ttl", options.ttl as string) / 1000);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
    if (ttlSeconds < 10) throw new UsageError("--ttl must be at least 10s");
  }
  return { caDir, outDir, trustDomain, keepers: Number(keepersText), workloads, ttlSeconds };
}

async function fail<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(error.message);
    throw new CliError((error as Error).message);
  }
}
