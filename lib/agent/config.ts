/**
 * The `spike agent` configuration file (YAML, or the same as JSON): parsed,
 * checked field by field, and returned frozen. Every error names the file
 * and the field (`agent.yaml: secrets[1].format: …`); unknown fields are
 * errors too, so a typo never silently turns a setting off.
 *
 * ```yaml
 * interval: 30s
 * secrets:
 *   - path: app/db
 *     destination: /run/secrets/db.env
 *     format: env
 *     on_change: { signal: HUP, pid_file: /run/app.pid }
 * ```
 *
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { secretPath } from "../api/validate.ts";
import { ConfigError, parseDuration, parseHttpsUrl } from "../config/parse.ts";
import { type CompiledTemplate, compileTemplate, TemplateError } from "./template.ts";

/** Output formats of a rendered file. */
export const AGENT_FORMATS = ["env", "json", "yaml", "raw", "template"] as const;
/** One output format. */
export type AgentFormat = typeof AGENT_FORMATS[number];

/** Signals an `on_change` may send (given as `HUP` or `SIGHUP`). */
export const CHANGE_SIGNALS: readonly Deno.Signal[] = Object.freeze([
  "SIGHUP",
  "SIGUSR1",
  "SIGUSR2",
  "SIGINT",
  "SIGTERM",
  "SIGQUIT",
  "SIGWINCH",
]);

/** What to do after a file changed. */
export type ChangeAction =
  | { readonly kind: "signal"; readonly signal: Deno.Signal; readonly pidFile: string }
  | { readonly kind: "command"; readonly command: readonly string[]; readonly timeoutMs: number };

/** A numeric owner for a rendered file. */
export interface FileOwner {
  /** User id. */
  readonly uid: number;
  /** Group id; unchanged when absent. */
  readonly gid?: number;
}

/** One secret rendered to one file. */
export interface AgentEntry {
  /** `secrets[i]`, for messages. */
  readonly field: string;
  /** The secret path. */
  readonly path: string;
  /** A fixed version to render; absent = follow the current version. */
  readonly version?: number;
  /** Absolute path of the file written. */
  readonly destination: string;
  /** How the file is laid out. */
  readonly format: AgentFormat;
  /** The key whose value is the whole file (`raw`). */
  readonly key?: string;
  /** The parsed template (`template`). */
  readonly template?: CompiledTemplate;
  /** File mode (default 0600). */
  readonly mode: number;
  /** Numeric owner, when set. */
  readonly owner?: FileOwner;
  /** Signal or command after the file changed. */
  readonly onChange?: ChangeAction;
  /** What a deleted secret does to its file: kept (default) or removed. */
  readonly onDelete: "keep" | "remove";
}

/** The whole agent configuration. */
export interface AgentConfig {
  /** Nexus URL from the file (`nexus:`); absent = `SPIKE_NEXUS_API_URL`. */
  readonly nexusUrl?: string;
  /** How often each secret's metadata is polled (default 30 s, ±10 % jitter). */
  readonly intervalMs: number;
  /** Longest wait between retries while Nexus is unreachable or not ready (default 5 min). */
  readonly maxBackoffMs: number;
  /** The files to keep current. */
  readonly entries: readonly AgentEntry[];
}

/** A configuration that cannot be used; the message names the file and field. */
export class AgentConfigError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "AgentConfigError";
  }
}

/** Where the configuration came from, and how to read the files it names. */
export interface ParseOptions {
  /** Name used in messages (the file name). */
  readonly source: string;
  /** Directory relative `destination`, `pid_file` and `template_file` paths resolve against. */
  readonly baseDir: string;
  /** Reads a `template_file`. */
  readonly readTextFile: (path: string) => string;
}

const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_MAX_BACKOFF_MS = 5 * 60_000;
const DEFAULT_ACTION_TIMEOUT_MS = 30_000;
const TOP_FIELDS = ["nexus", "interval", "max_backoff", "secrets"];
const ENTRY_FIELDS = [
  "path",
  "version",
  "destination",
  "format",
  "key",
  "template",
  "template_file",
  "mode",
  "owner",
  "on_change",
  "on_delete",
];
const ACTION_FIELDS = ["signal", "pid_file", "command", "timeout"];

/**
 * Parses and checks a configuration file's text.
 *
 * @throws {AgentConfigError} naming the field for anything missing, unknown or malformed.
 */
export function parseAgentConfig(text: string, options: ParseOptions): AgentConfig {
  const fail = (field: string, why: string): never => {
    throw new AgentConfigError(`${options.source}: ${field}: ${why}`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new AgentConfigError(`${options.source}: not valid YAML or JSON: ${(error as Error).message.split("\n")[0]}`);
  }
  const top = mapping(doc, "the file", fail);
  checkFields(top, TOP_FIELDS, "the file", fail);
  const intervalMs = duration(top.interval, "interval", DEFAULT_INTERVAL_MS, 50, 24 * 3600_000, fail);
  const maxBackoffMs = duration(top.max_backoff, "max_backoff", DEFAULT_MAX_BACKOFF_MS, 50, 24 * 3600_000, fail);
  let nexusUrl: string | undefined;
  if (top.nexus !== undefined) {
    try {
      nexusUrl = parseHttpsUrl("nexus", text_(top.nexus, "nexus", fail));
    } catch (error) {
      if (error instanceof ConfigError) fail("nexus", error.message.replace(/^nexus: /, ""));
      throw error;
    }
  }
  if (!Array.isArray(top.secrets) || top.secrets.length === 0) fail("secrets", "give a list of at least one secret");
  const entries = (top.secrets as unknown[]).map((item, i) => parseEntry(item, `secrets[${i}]`, options, fail));
  const seen = new Map<string, string>();
  for (const entry of entries) {
    const earlier = seen.get(entry.destination);
    if (earlier) fail(`${entry.field}.destination`, `${entry.destination} is also the destination of ${earlier}`);
    seen.set(entry.destination, entry.field);
  }
  return Object.freeze({
    ...(nexusUrl ? { nexusUrl } : {}),
    intervalMs,
    maxBackoffMs,
    entries: Object.freeze(entries),
  });
}

type Fail = (field: string, why: string) => never;

function parseEntry(item: unknown, field: string, options: ParseOptions, fail: Fail): AgentEntry {
  const e = mapping(item, field, fail);
  checkFields(e, ENTRY_FIELDS, field, fail);
  const path = text_(e.path, `${field}.path`, fail);
  try {
    secretPath(path);
  } catch {
    fail(`${field}.path`, `'${path}' is not a secret path (1-500 characters of letters, digits and ._-/()?+*|[]{}\\)`);
  }
  const format = text_(e.format, `${field}.format`, fail);
  if (!(AGENT_FORMATS as readonly string[]).includes(format)) {
    fail(`${field}.format`, `'${format}' is not one of ${AGENT_FORMATS.join(", ")}`);
  }
  const entry: Record<string, unknown> = {
    field,
    path,
    destination: filePath(e.destination, `${field}.destination`, options, fail),
    format,
    mode: fileMode(e.mode, `${field}.mode`, fail),
    onDelete: onDelete(e.on_delete, `${field}.on_delete`, fail),
  };
  if (e.version !== undefined) {
    if (typeof e.version !== "number" || !Number.isInteger(e.version) || e.version < 0 || e.version > 2 ** 31 - 1) {
      fail(`${field}.version`, "must be a whole number (0 or absent: follow the current version)");
    }
    if (e.version !== 0) entry.version = e.version;
  }
  if (format === "raw") {
    entry.key = text_(e.key, `${field}.key`, fail, "format raw needs the key whose value is the file");
  } else if (e.key !== undefined) fail(`${field}.key`, "is only used with format raw");
  if (format === "template") entry.template = template(e, field, options, fail);
  else if (e.template !== undefined || e.template_file !== undefined) {
    fail(`${field}.${e.template !== undefined ? "template" : "template_file"}`, "is only used with format template");
  }
  if (e.owner !== undefined) entry.owner = owner(e.owner, `${field}.owner`, fail);
  if (e.on_change !== undefined) entry.onChange = changeAction(e.on_change, `${field}.on_change`, options, fail);
  return Object.freeze(entry) as unknown as AgentEntry;
}

function template(e: Record<string, unknown>, field: string, options: ParseOptions, fail: Fail): CompiledTemplate {
  if ((e.template === undefined) === (e.template_file === undefined)) {
    fail(field, "format template needs exactly one of template (inline) or template_file");
  }
  let source: string;
  let where: string;
  if (e.template !== undefined) {
    source = text_(e.template, `${field}.template`, fail, undefined, true);
    where = `${field}.template`;
  } else {
    const file = filePath(e.template_file, `${field}.template_file`, options, fail);
    where = `${field}.template_file (${file})`;
    try {
      source = options.readTextFile(file);
    } catch (error) {
      fail(`${field}.template_file`, `cannot read ${file}: ${(error as Error).message}`);
    }
  }
  try {
    return compileTemplate(source!);
  } catch (error) {
    if (error instanceof TemplateError) fail(where, error.message);
    throw error;
  }
}

function changeAction(value: unknown, field: string, options: ParseOptions, fail: Fail): ChangeAction {
  const a = mapping(value, field, fail);
  checkFields(a, ACTION_FIELDS, field, fail);
  if ((a.signal === undefined) === (a.command === undefined)) {
    fail(field, "give either signal (with pid_file) or command");
  }
  if (a.signal !== undefined) {
    if (a.timeout !== undefined) fail(`${field}.timeout`, "is only used with command");
    const name = text_(a.signal, `${field}.signal`, fail).toUpperCase();
    const signal = (name.startsWith("SIG") ? name : `SIG${name}`) as Deno.Signal;
    if (!CHANGE_SIGNALS.includes(signal)) {
      fail(`${field}.signal`, `'${a.signal}' is not one of ${CHANGE_SIGNALS.map((s) => s.slice(3)).join(", ")}`);
    }
    if (a.pid_file === undefined) fail(`${field}.pid_file`, "signal needs the file holding the process id");
    return Object.freeze({ kind: "signal", signal, pidFile: filePath(a.pid_file, `${field}.pid_file`, options, fail) });
  }
  if (a.pid_file !== undefined) fail(`${field}.pid_file`, "is only used with signal");
  const command = a.command;
  if (!Array.isArray(command) || command.length === 0 || !command.every((w) => typeof w === "string" && w !== "")) {
    fail(`${field}.command`, "must be a list of words, the program first, e.g. [nginx, -s, reload] (no shell is used)");
  }
  const timeoutMs = duration(a.timeout, `${field}.timeout`, DEFAULT_ACTION_TIMEOUT_MS, 1, 3600_000, fail);
  return Object.freeze({ kind: "command", command: Object.freeze([...(command as string[])]), timeoutMs });
}

function mapping(value: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(field, "must be a mapping of fields");
  return value as Record<string, unknown>;
}

function checkFields(value: Record<string, unknown>, known: readonly string[], field: string, fail: Fail): void {
  for (const name of Object.keys(value)) {
    if (!known.includes(name)) {
      fail(field === "the file" ? name : `${field}.${name}`, `unknown field (known: ${known.join(", ")})`);
    }
  }
}

function text_(value: unknown, field: string, fail: Fail, missing = "is required", allowEmpty = false): string {
  if (value === undefined || value === null) fail(field, missing);
  if (typeof value !== "string" || (!allowEmpty && value === "")) fail(field, "must be a non-empty string");
  return value as string;
}

function duration(value: unknown, field: string, fallback: number, min: number, max: number, fail: Fail): number {
  if (value === undefined) return fallback;
  if (typeof value !== "string") fail(field, "must be a duration such as 30s, 500ms or 5m (with its unit)");
  let ms: number;
  try {
    ms = parseDuration(field, value as string);
  } catch (error) {
    if (error instanceof ConfigError) fail(field, error.message.slice(field.length + 2));
    throw error;
  }
  if (ms! < min || ms! > max) fail(field, `must be between ${min} ms and ${max / 3600_000} h`);
  return ms!;
}

function filePath(value: unknown, field: string, options: ParseOptions, fail: Fail): string {
  const text = text_(value, field, fail);
  if (text.endsWith("/")) fail(field, `'${text}' names a directory, not a file`);
  return isAbsolute(text) ? resolve(text) : resolve(join(options.baseDir, text));
}

function fileMode(value: unknown, field: string, fail: Fail): number {
  if (value === undefined) return 0o600;
  // A bare YAML 0600 is the decimal 600 in YAML 1.2; insisting on a string avoids that trap.
  if (typeof value !== "string") fail(field, 'give an octal string such as "0600" (quoted)');
  const match = /^0?o?([0-7]{3})$/.exec(value as string);
  if (!match) fail(field, `'${value}' is not an octal mode such as "0600" or "0640"`);
  return parseInt(match![1]!, 8);
}

function owner(value: unknown, field: string, fail: Fail): FileOwner {
  const text = typeof value === "number" ? String(value) : value;
  const match = typeof text === "string" ? /^(\d+)(?::(\d+))?$/.exec(text) : null;
  if (!match) fail(field, 'give numeric ids: "uid" or "uid:gid" (names are not looked up)');
  const uid = Number(match![1]);
  return Object.freeze(match![2] === undefined ? { uid } : { uid, gid: Number(match![2]) });
}

function onDelete(value: unknown, field: string, fail: Fail): "keep" | "remove" {
  if (value === undefined) return "keep";
  if (value !== "keep" && value !== "remove") fail(field, "must be keep (the default) or remove");
  return value as "keep" | "remove";
}
