/**
 * Turns the `postgres` backend settings into store options, reading the
 * password and CA files when configured (so the password needs to be in
 * neither the URL nor the environment). Nexus and the backup commands share
 * it, so both connect exactly alike.
 *
 * @module
 */
import type { PostgresConfig } from "../config/spike_config.ts";
import type { PostgresStoreOptions } from "./postgres_connection.ts";

/** The connection options `settings` describe; errors name the setting and file, never the content. */
export function postgresStoreOptions(settings: PostgresConfig): PostgresStoreOptions {
  const password = settings.passwordFile === undefined
    ? undefined
    : readSetting("SPIKE_NEXUS_POSTGRES_PASSWORD_FILE", settings.passwordFile).replace(/\r?\n$/, "");
  const caPem = settings.caFile === undefined
    ? undefined
    : readSetting("SPIKE_NEXUS_POSTGRES_CA_FILE", settings.caFile);
  return {
    url: settings.url,
    maxConnections: settings.maxConnections,
    statementTimeoutMs: settings.statementTimeoutMs,
    ...(password === undefined ? {} : { password }),
    ...(caPem === undefined ? {} : { caPem }),
  };
}

/** Reads a file named by a setting; the error names the setting and the file, never the content. */
function readSetting(variable: string, file: string): string {
  try {
    return Deno.readTextFileSync(file);
  } catch (error) {
    throw new Error(`cannot read ${variable} ${file}: ${(error as Error).name}`);
  }
}
