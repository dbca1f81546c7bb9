/**
 * Parsers for configuration values. Each one names the variable in its error,
 * so a bad setting is reported as `SPIKE_X: <why>` rather than a stack trace.
 *
 * @module
 */

/** A configuration value that cannot be used. */
export class ConfigError extends Error {
  /** Creates an error for the setting `name`. */
  constructor(name: string, reason: string) {
    super(`${name}: ${reason}`);
    this.name = "ConfigError";
  }
}

/** A host and port to listen on or connect to. */
export interface ListenAddress {
  /** Interface address; `0.0.0.0` means every IPv4 interface. */
  readonly host: string;
  /** TCP port, 0 for "pick a free one". */
  readonly port: number;
}

/**
 * Parses SPIKE's listen forms: `:8553`, `8553`, `127.0.0.1:8553`,
 * `[::1]:8553`. An empty host means every interface, as in SPIKE.
 */
export function parseListenAddress(name: string, value: string): ListenAddress {
  const text = value.trim();
  let host = "";
  let portText = text;
  const bracketed = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
  } else if (text.includes(":")) {
    const at = text.lastIndexOf(":");
    host = text.slice(0, at);
    portText = text.slice(at + 1);
    if (host.includes(":")) throw new ConfigError(name, `put an IPv6 address in brackets: '[${host}]:${portText}'`);
  }
  const port = parsePort(name, portText);
  return Object.freeze({ host: host === "" ? "0.0.0.0" : host, port });
}

/** Parses a TCP port number 0..65535. */
export function parsePort(name: string, value: string): number {
  if (!/^\d{1,5}$/.test(value)) throw new ConfigError(name, `'${value}' is not a port number`);
  const port = Number(value);
  if (port > 65535) throw new ConfigError(name, `port ${port} is out of range (0-65535)`);
  return port;
}

/** Parses a whole number within `[min, max]`. */
export function parseInteger(name: string, value: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value.trim())) throw new ConfigError(name, `'${value}' is not a whole number`);
  const n = Number(value.trim());
  if (n < min || n > max) throw new ConfigError(name, `${n} is out of range (${min}-${max})`);
  return n;
}

/** Parses a decimal number (`2`, `0.5`) within `min`..`max`. */
export function parseNumber(name: string, value: string, min: number, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(value.trim())) throw new ConfigError(name, `'${value}' is not a number`);
  const n = Number(value.trim());
  if (n < min || n > max) throw new ConfigError(name, `${n} is out of range (${min}-${max})`);
  return n;
}

/** Parses `true/false/1/0/yes/no` (any case). */
export function parseBoolean(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(v)) return true;
  if (["false", "0", "no", "off", ""].includes(v)) return false;
  throw new ConfigError(name, `'${value}' is not true or false`);
}

/** Splits a comma-separated list, trimming blanks and dropping empty items. */
export function parseList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go-style duration (`300ms`, `30s`, `5m`, `1h30m`, `1.5h`) into
 * milliseconds. A bare number is rejected: the unit is never guessed.
 */
export function parseDuration(name: string, value: string): number {
  const text = value.trim();
  const pattern = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(pattern)) {
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
    consumed += match[0].length;
  }
  if (text === "0") return 0;
  if (text === "" || consumed !== text.length) {
    throw new ConfigError(name, `'${value}' is not a duration (examples: 30s, 5m, 1h30m)`);
  }
  return total;
}

/** Parses an absolute `https://` URL (API endpoints and Keeper peers). */
export function parseHttpsUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(name, `'${value}' is not a URL`);
  }
  if (url.protocol !== "https:") throw new ConfigError(name, `'${value}' must use https://`);
  return url.origin + url.pathname.replace(/\/+$/, "");
}

/**
 * Parses a `postgres://` (or `postgresql://`) connection URL. Messages never
 * repeat the value: it may hold a password.
 */
export function parsePostgresUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(name, "is not a URL (expected postgres://user@host:port/database)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConfigError(name, `must use postgres:// (got ${url.protocol}//)`);
  }
  if (!url.hostname) throw new ConfigError(name, "names no host");
  // The driver would otherwise ask the OS for the current user's name.
  if (!url.username) throw new ConfigError(name, "names no user (postgres://user@host:port/database)");
  if (url.pathname.length <= 1) throw new ConfigError(name, "names no database (postgres://user@host:port/database)");
  return value.trim();
}
