/**
 * How `spike exec` turns secrets into environment variables: each key of
 * each secret becomes one variable, named `prefix + key` (the key upper-cased
 * with `--uppercase`), or exactly the name an explicit `--map` gives it.
 * Every name must be a shell identifier, and no two keys may land on the same
 * name: both are refused rather than silently fixed, because a workload
 * reading `DB_PASS` should never get some other key's value.
 *
 * Errors name paths, keys and variable names, never values.
 *
 * @module
 */
import { isEnvName } from "../format/dotenv.ts";

/** One `--path` argument: a secret path and, optionally, its own prefix. */
export interface SecretSource {
  /** The secret path. */
  readonly path: string;
  /** Prefix for this path's variables; overrides the global prefix. */
  readonly prefix?: string;
}

/** One `--map` argument: the exact variable name for a key. */
export interface NameMapping {
  /** Only this secret path's key; absent = the key in any path. */
  readonly path?: string;
  /** The secret key. */
  readonly key: string;
  /** The variable name, used as is (no prefix, no upper-casing). */
  readonly name: string;
}

/** Naming rules that apply to every path. */
export interface MappingOptions {
  /** Prefix for paths without their own. */
  readonly prefix?: string;
  /** Upper-case key names (the prefix is used as given). */
  readonly uppercase?: boolean;
  /** Explicit names. */
  readonly maps?: readonly NameMapping[];
}

/** A secret that was read: its source and its values. */
export interface ReadSecret extends SecretSource {
  /** Key → value. */
  readonly values: Readonly<Record<string, string>>;
}

/** Why secrets cannot become an environment. Messages never hold a value. */
export class EnvMappingError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "EnvMappingError";
  }
}

/** A command-line argument that cannot be used (report as a usage error). */
export class MappingSpecError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MappingSpecError";
  }
}

const PREFIX = /^(?:[A-Za-z_][A-Za-z0-9_]*)?$/;

/**
 * Parses `--path P` or `--path P=PFX` (secret paths never hold `=`).
 *
 * @throws {MappingSpecError} for an empty path or a prefix that cannot start a variable name.
 */
export function parsePathSpec(spec: string): SecretSource {
  const at = spec.indexOf("=");
  const path = at < 0 ? spec : spec.slice(0, at);
  if (path === "") throw new MappingSpecError(`--path '${spec}' names no secret path`);
  if (at < 0) return { path };
  const prefix = spec.slice(at + 1);
  checkPrefix(prefix, `--path ${path}=`);
  return { path, prefix };
}

/**
 * Parses `--map KEY=NAME` or `--map PATH:KEY=NAME` (paths and keys never
 * hold `=` or `:`).
 *
 * @throws {MappingSpecError} when the form is wrong or NAME is not a shell identifier.
 */
export function parseMapSpec(spec: string): NameMapping {
  const at = spec.indexOf("=");
  if (at < 0) throw new MappingSpecError(`--map '${spec}' is not KEY=NAME or PATH:KEY=NAME`);
  const left = spec.slice(0, at);
  const name = spec.slice(at + 1);
  const colon = left.lastIndexOf(":");
  const path = colon < 0 ? undefined : left.slice(0, colon);
  const key = colon < 0 ? left : left.slice(colon + 1);
  if (key === "" || path === "") throw new MappingSpecError(`--map '${spec}' is not KEY=NAME or PATH:KEY=NAME`);
  if (!isEnvName(name)) {
    throw new MappingSpecError(`--map '${spec}': '${name}' is not a valid environment variable name`);
  }
  return path === undefined ? { key, name } : { path, key, name };
}

/** Checks a prefix given on the command line. */
export function checkPrefix(prefix: string, flag = "--prefix"): void {
  if (!PREFIX.test(prefix)) {
    throw new MappingSpecError(
      `${flag}: '${prefix}' cannot start an environment variable name (letters, digits and '_', not first a digit)`,
    );
  }
}

/**
 * Maps every key of `secrets` to a variable. Resolves to name → value.
 *
 * @throws {EnvMappingError} when a name is not a shell identifier, two keys
 *   land on one name, or a `--map` matches no key.
 */
export function mapSecretsToEnv(
  secrets: readonly ReadSecret[],
  options: MappingOptions = {},
): Record<string, string> {
  const maps = options.maps ?? [];
  const env: Record<string, string> = {};
  const origin = new Map<string, string>();
  const usedMaps = new Set<NameMapping>();
  for (const secret of secrets) {
    for (const key of Object.keys(secret.values).sort()) {
      const map = maps.find((m) => m.key === key && m.path === secret.path) ??
        maps.find((m) => m.key === key && m.path === undefined);
      if (map) usedMaps.add(map);
      const name = map?.name ??
        `${secret.prefix ?? options.prefix ?? ""}${options.uppercase ? key.toUpperCase() : key}`;
      const from = `${secret.path} (key '${key}')`;
      if (!isEnvName(name)) {
        throw new EnvMappingError(
          `${from} would be the variable '${name}', which is not a valid environment variable name; ` +
            `name it with --map ${secret.path}:${key}=NAME`,
        );
      }
      const earlier = origin.get(name);
      if (earlier !== undefined) {
        throw new EnvMappingError(
          `${earlier} and ${from} would both be the variable ${name}; ` +
            "give each path its own prefix (--path PATH=PREFIX_) or name one with --map",
        );
      }
      origin.set(name, from);
      env[name] = secret.values[key]!;
    }
  }
  for (const map of maps) {
    if (usedMaps.has(map)) continue;
    const flag = `--map ${map.path === undefined ? "" : `${map.path}:`}${map.key}=${map.name}`;
    if (map.path === undefined) throw new EnvMappingError(`${flag}: no secret has a key '${map.key}'`);
    if (!secrets.some((s) => s.path === map.path)) {
      throw new EnvMappingError(`${flag}: ${map.path} is not one of the --path secrets`);
    }
    throw new EnvMappingError(`${flag}: secret ${map.path} has no key '${map.key}'`);
  }
  return env;
}
