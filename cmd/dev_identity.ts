/**
 * `spike dev identity <spiffe-id> --dir <ca-dir> --out <dir>`: mints an
 * X.509-SVID from the development CA in spiffe-helper layout.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { ConfigError, parseDuration } from "../lib/config/parse.ts";
import { parseSpiffeId } from "../lib/spiffe/id.ts";

/** The `dev identity` command. */
export const devIdentityCommand: CommandSpec = {
  name: "identity",
  summary: "Mint an SVID from the development CA (spiffe-helper layout)",
  args: "<spiffe-id>",
  details: "Creates the CA in --dir if it is missing, then writes svid.pem, svid_key.pem and\n" +
    "svid_bundle.pem into --out. For development and tests only: the CA key is a plain file.",
  positionals: { min: 1, max: 1 },
  options: {
    dir: { type: "string", description: "CA directory (created if missing)", valueName: "ca-dir" },
    out: { type: "string", description: "Directory to write the SVID files into", valueName: "dir" },
    ttl: { type: "string", description: "SVID lifetime, e.g. 24h (default), 30m", valueName: "duration" },
  },
  run: async ({ positionals, options, io }) => {
    const dir = options.dir as string | undefined;
    const out = options.out as string | undefined;
    if (!dir) throw new UsageError("--dir is required");
    if (!out) throw new UsageError("--out is required");
    let id;
    try {
      id = parseSpiffeId(positionals[0]!);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    let ttlSeconds = 24 * 3600;
    if (options.ttl !== undefined) {
      try {
        ttlSeconds = Math.ceil(parseDuration("--ttl", options.ttl as string) / 1000);
      } catch (error) {
        if (error instanceof ConfigError) throw new UsageError(error.message);
        throw error;
      }
      if (ttlSeconds < 1) throw new UsageError("--ttl must be at least 1s");
    }
    // The development CA (and the X.509 library that builds certificates) loads only for this command.
    const { loadOrCreateDevCa, writeSvidFiles } = await import("../lib/spiffe/dev_ca.ts");
    try {
      const ca = await loadOrCreateDevCa(dir, { trustDomain: id.trustDomain });
      const identity = await ca.issue(id.toString(), { ttlSeconds });
      try {
        await writeSvidFiles(out, identity);
      } finally {
        identity.privateKeyPem.fill(0);
      }
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    io.stderr(`wrote an SVID for ${id.toString()} to ${out}\n`);
    return 0;
  },
};
