/**
 * Just enough of systemd's unit and environment file syntax to check what a
 * unit will run: sections and `Key=value` lines (with `\` continuations),
 * the `%i` specifier, `${VAR}` expansion, and `EnvironmentFile=` contents.
 *
 * @module
 */

/** A unit file: each section's assignments, in order (keys may repeat). */
export type UnitFile = ReadonlyMap<string, ReadonlyArray<readonly [string, string]>>;

/** Parses a unit file's text. */
export function parseUnit(text: string): UnitFile {
  const sections = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = [];
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 0) throw new Error(`not a unit file line: ${line}`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim().replace(/\s+/g, " ")]);
  }
  return sections;
}

/** Every value of `key` in `section`. */
export function values(unit: UnitFile, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The single value of `key` in `section`; throws when absent or repeated. */
export function value(unit: UnitFile, section: string, key: string): string {
  const all = values(unit, section, key);
  if (all.length !== 1) throw new Error(`${section}.${key}: expected one value, found ${all.length}`);
  return all[0]!;
}

/** Replaces `%i` (the instance name) and `%%`, as systemd does in most settings. */
export function expandSpecifiers(text: string, instance = ""): string {
  return text.replace(/%([i%])/g, (_, c) => c === "i" ? instance : "%");
}

/** Expands `${VAR}` in a command line from `env` (unset: empty, as systemd does). */
export function expandVariables(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name) => env[name] ?? "");
}

/** Parses an `EnvironmentFile=`: `NAME=value` lines; `#` comments and blank lines skipped. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`not an environment line: ${line}`);
    env[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return env;
}

/** `Environment=` assignments of the `[Service]` section (one per line here). */
export function serviceEnvironment(unit: UnitFile, instance = ""): Record<string, string> {
  const env: Record<string, string> = {};
  for (const assignment of values(unit, "Service", "Environment")) {
    const eq = assignment.indexOf("=");
    env[assignment.slice(0, eq)] = expandSpecifiers(assignment.slice(eq + 1), instance);
  }
  return env;
}
