/**
 * A small command-tree runner on top of `node:util` `parseArgs`: it walks
 * subcommands, generates `--help` text from the same specs it parses with, and
 * maps failures to exit codes (2 for usage errors, 1 for everything else).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CliError, UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";
import { didYouMean } from "./suggest.ts";

/** One flag of a command. */
export interface OptionSpec {
  /** `string` flags take a value; `boolean` flags don't. */
  readonly type: "string" | "boolean";
  /** Single-letter alias, e.g. `v` for `-v`. */
  readonly short?: string;
  /** One line for the help text. */
  readonly description: string;
  /** Placeholder shown in help, e.g. `N` in `--version N`. */
  readonly valueName?: string;
  /** Allow the flag several times (values arrive as an array). */
  readonly multiple?: boolean;
  /** The values a `string` flag takes, when it is a fixed set (offered by shell completion). */
  readonly choices?: readonly string[];
}

/** What a command's `run` receives. */
export interface CommandContext {
  /** Positional arguments after the command path. */
  readonly positionals: readonly string[];
  /** Parsed flags by long name (absent flags are `undefined`). */
  readonly options: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  /** Standard streams and the process environment. */
  readonly io: CliIo;
}

/** A node of the command tree: either runnable, or a group of subcommands. */
export interface CommandSpec {
  /** The word typed on the command line. */
  readonly name: string;
  /** One line shown in the parent's help. */
  readonly summary: string;
  /** Positional synopsis for the usage line, e.g. `<path> [key=value...]`. */
  readonly args?: string;
  /** Extra help paragraphs. */
  readonly details?: string;
  /** Flags this command accepts (`--help` is always added). */
  readonly options?: Readonly<Record<string, OptionSpec>>;
  /** Smallest and largest number of positionals (`max` undefined = unbounded). */
  readonly positionals?: { readonly min: number; readonly max?: number };
  /** Runs the command; resolves with the exit code. */
  readonly run?: (context: CommandContext) => Promise<number>;
  /** Child commands, for groups such as `secret` or `policy`. */
  readonly subcommands?: readonly CommandSpec[];
  /** The root's version line; when set, `--version` (or `-V`) alone prints it. */
  readonly version?: string;
}

/**
 * Runs `argv` against the tree rooted at `root` and resolves with the exit
 * code. Never throws: every failure becomes a message on stderr.
 */
export async function runCommand(
  root: CommandSpec,
  argv: readonly string[],
  io: CliIo,
): Promise<number> {
  const path: CommandSpec[] = [root];
  let rest = [...argv];
  // Walk down while the next word names a subcommand.
  while (true) {
    const current = path[path.length - 1]!;
    const next = rest[0];
    if (!current.subcommands || next === undefined || next.startsWith("-")) break;
    const child = current.subcommands.find((c) => c.name === next);
    if (!child) {
      const hint = didYouMean(next, current.subcommands.map((c) => c.name));
      io.stderr(`${commandName(path)}: unknown command '${next}'${hint}\n\n`);
      io.stderr(helpText(path));
      return 2;
    }
    path.push(child);
    rest = rest.slice(1);
  }
  const command = path[path.length - 1]!;
  if (command.version !== undefined && rest.length === 1 && (rest[0] === "--version" || rest[0] === "-V")) {
    io.stdout(`${command.version}\n`);
    return 0;
  }
  // Words after `--` belong to a wrapped command (`spike exec -- ls --help`), not to us.
  const dashes = rest.indexOf("--");
  const ours = dashes < 0 ? rest : rest.slice(0, dashes);
  if (ours.includes("--help") || ours.includes("-h")) {
    io.stdout(helpText(path));
    return 0;
  }
  if (!command.run) {
    if (rest.length > 0) {
      io.stderr(`${commandName(path)}: unknown option '${rest[0]}'${didYouMean(rest[0]!, flagNames(command))}\n\n`);
    } else io.stderr(`${commandName(path)}: a subcommand is required\n\n`);
    io.stderr(helpText(path));
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: toParseArgsOptions(command.options ?? {}),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    io.stderr(`${commandName(path)}: ${usageMessage(error)}${unknownOptionHint(error, command)}\n\n`);
    io.stderr(helpText(path));
    return 2;
  }
  const { min = 0, max } = command.positionals ?? {};
  const count = parsed.positionals.length;
  if (count < min || (max !== undefined && count > max)) {
    const extra = parsed.positionals[max ?? 0];
    const why = count < min ? "missing argument" : `unexpected argument '${extra}'`;
    // A command that has subcommands too (`dev`) sees a mistyped subcommand as an argument.
    const hint = count > min && extra !== undefined && command.subcommands && parsed.positionals[0] === extra
      ? didYouMean(extra, command.subcommands.map((c) => c.name))
      : "";
    io.stderr(`${commandName(path)}: ${why}${hint}\n\n`);
    io.stderr(helpText(path));
    return 2;
  }
  try {
    return await command.run({ positionals: parsed.positionals, options: parsed.values, io });
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${commandName(path)}: ${error.message}\n\n${helpText(path)}`);
      return 2;
    }
    if (error instanceof CliError) {
      io.stderr(`${commandName(path)}: ${error.message}\n`);
      return error.exitCode;
    }
    // Unknown errors carry no user data by construction, but their text may
    // still be unhelpful; keep it short and on stderr.
    io.stderr(`${commandName(path)}: unexpected error: ${(error as Error)?.message ?? String(error)}\n`);
    return 1;
  }
}

/** Builds the help text for the last command of `path`. */
export function helpText(path: readonly CommandSpec[]): string {
  const command = path[path.length - 1]!;
  const lines: string[] = [];
  const name = commandName(path);
  if (path.length === 1) lines.push(`${command.summary}\n`);
  else lines.push(`${name} — ${command.summary}\n`);
  const own = `${name}${command.options && Object.keys(command.options).length ? " [options]" : ""}${
    command.args ? ` ${command.args}` : ""
  }`;
  const synopses = [
    ...(command.run ? [own] : []),
    ...(command.subcommands ? [`${name} <command> [options]`] : []),
  ];
  lines.push(`Usage: ${synopses.join("\n       ")}\n`);
  if (command.details) lines.push(`${command.details.trimEnd()}\n`);
  if (command.subcommands) {
    lines.push("Commands:");
    const width = Math.max(...command.subcommands.map((c) => c.name.length));
    for (const c of command.subcommands) lines.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
    lines.push("");
  }
  const options = Object.entries(command.options ?? {});
  lines.push("Options:");
  const rows = options.map(([long, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : "    "}--${long}${
      spec.type === "string" ? ` <${spec.valueName ?? "value"}>` : ""
    }`;
    return [flag, spec.description] as const;
  });
  rows.push(["-h, --help", "Show this help"]);
  if (command.version !== undefined) rows.push(["-V, --version", "Show the version"]);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  for (const [flag, description] of rows) lines.push(`  ${flag.padEnd(width)}  ${description}`);
  if (command.subcommands) lines.push(`\nRun '${name} <command> --help' for a command's options.`);
  return lines.join("\n") + "\n";
}

function commandName(path: readonly CommandSpec[]): string {
  return path.map((c) => c.name).join(" ");
}

function toParseArgsOptions(options: Readonly<Record<string, OptionSpec>>) {
  const out: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [long, spec] of Object.entries(options)) {
    out[long] = { type: spec.type };
    if (spec.short) out[long].short = spec.short;
    if (spec.multiple) out[long].multiple = true;
  }
  return out;
}

/** Every flag spelling a command accepts, long and short, `--help` included. */
export function flagNames(command: CommandSpec): string[] {
  const names = ["--help", "-h"];
  if (command.version !== undefined) names.push("--version", "-V");
  for (const [long, spec] of Object.entries(command.options ?? {})) {
    names.push(`--${long}`);
    if (spec.short) names.push(`-${spec.short}`);
  }
  return names;
}

/** "; did you mean '--format'?" when parseArgs refused an unknown long flag close to a known one. */
function unknownOptionHint(error: unknown, command: CommandSpec): string {
  if ((error as { code?: string })?.code !== "ERR_PARSE_ARGS_UNKNOWN_OPTION") return "";
  const match = /Unknown option '([^']+)'/.exec((error as Error).message);
  if (!match || !match[1]!.startsWith("--")) return "";
  return didYouMean(match[1]!, flagNames(command).filter((f) => f.startsWith("--")));
}

function usageMessage(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  // parseArgs messages mention "To specify a positional argument ..." hints
  // that are noise for our users; keep the first sentence.
  return message.split(". ")[0]!.replace(/^Unknown option/, "unknown option");
}
