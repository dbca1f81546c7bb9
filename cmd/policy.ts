/**
 * `spike policy ...`: create, apply, list, get and delete access policies.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { confirm } from "../lib/cli/confirm.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import type { CliIo } from "../lib/cli/io.ts";
import { type Permission, PERMISSIONS } from "../lib/api/validate.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import type { PolicyInput } from "../lib/client/nexus_client.ts";
import { deletePolicyByName, getPolicyByName, policyExists } from "../lib/client/policy_by_name.ts";
import { withNexus } from "./pilot_session.ts";

const FORMAT_OPTION = {
  format: { type: "string", short: "f", description: "Output format: human, json or yaml", valueName: "format" },
} as const;

/** Parses `read,write` into permissions, rejecting unknown words. */
export function parsePermissions(value: unknown): Permission[] {
  const words = (Array.isArray(value) ? value.map(String) : String(value ?? "").split(","))
    .map((w) => w.trim()).filter((w) => w !== "");
  if (words.length === 0) throw new UsageError("give at least one permission");
  for (const word of words) {
    if (!(PERMISSIONS as readonly string[]).includes(word)) {
      throw new UsageError(`unknown permission '${word}' (use ${PERMISSIONS.join(", ")})`);
    }
  }
  return words as Permission[];
}

/**
 * The keys a policy file may spell each field with: today's SPIKE keys, the
 * wire's (so `spike policy get -f yaml|json` output applies as is, `id` and
 * the timestamps ignored), older SPIKE files (`spiffeid`, `path`), and
 * camel/snake variants.
 */
const FILE_KEYS = {
  name: ["name"],
  spiffeidPattern: ["spiffeidPattern", "spiffiedPattern", "spiffeIdPattern", "spiffeid_pattern", "spiffeid"],
  pathPattern: ["pathPattern", "path_pattern", "path"],
} as const;

/**
 * Reads a policy YAML/JSON file (`name`, `spiffeidPattern`, `pathPattern`,
 * `permissions`; see {@linkcode FILE_KEYS} for the other spellings) with
 * `parseYaml` (the `yaml` package's `parse`, which the caller loads only
 * for this command).
 */
export function parsePolicyFile(text: string, source: string, parseYaml: (text: string) => unknown): PolicyInput {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new CliError(`${source} is not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new CliError(`${source} must hold a mapping with name, spiffeidPattern, pathPattern, permissions`);
  }
  const d = doc as Record<string, unknown>;
  const field = (names: readonly string[]) => {
    const given = names.filter((n) => d[n] !== undefined && d[n] !== null);
    const values = new Set(given.map((n) => d[n]));
    if (values.size > 1) throw new CliError(`${source}: '${given.join("' and '")}' disagree; give one`);
    const value = given.length > 0 ? d[given[0]!] : undefined;
    if (typeof value !== "string" || value === "") {
      throw new CliError(`${source}: '${names[0]}' is missing or not a string`);
    }
    return value;
  };
  return {
    name: field(FILE_KEYS.name),
    spiffeidPattern: field(FILE_KEYS.spiffeidPattern),
    pathPattern: field(FILE_KEYS.pathPattern),
    permissions: parsePermissions(d.permissions),
  };
}

/**
 * Sends a policy; a 400 gets a message naming what Nexus checks. With
 * `createOnly`, a policy of that name must not exist yet (checked first, as
 * SPIKE's pilot does; Nexus itself only knows upsert). Reads and deletes by
 * name go through lib/client/policy_by_name.ts, so a missing name is "not
 * found" (exit 3) against SPIKE's Nexus too.
 */
async function savePolicy(io: CliIo, policy: PolicyInput, createOnly: boolean): Promise<void> {
  await withNexus(io, async ({ nexus }) => {
    if (createOnly && await policyExists(nexus, policy.name)) {
      throw new CliError(`policy '${policy.name}' already exists; use 'spike policy apply' to change it`);
    }
    try {
      await nexus.putPolicy(policy);
    } catch (error) {
      if (error instanceof ApiCallError && error.status === 400) {
        throw new CliError(
          "Nexus refused the policy as invalid: the name allows letters, digits, '-', '_' and spaces; both " +
            "patterns must be regular expressions that run in linear time (no backreferences or lookaround); " +
            "and the SPIFFE ID pattern must only match IDs starting with spiffe:// and match at least one " +
            "valid SPIFFE ID (e.g. ^spiffe://example\\.org/app$)",
        );
      }
      throw error;
    }
  });
}

/** The policy flags of `create` and `apply`; `--spiffeid` and `--path` are older SPIKE spellings. */
const POLICY_FLAGS = {
  name: { type: "string", description: "Policy name", valueName: "name" },
  "spiffeid-pattern": {
    type: "string",
    description: "Regex for the callers' SPIFFE IDs; must name the scheme, e.g. ^spiffe://example\\.org/app$",
    valueName: "regex",
  },
  spiffeid: { type: "string", description: "Same as --spiffeid-pattern (older SPIKE spelling)", valueName: "regex" },
  "path-pattern": { type: "string", description: "Regex matched against the secret path", valueName: "regex" },
  path: { type: "string", description: "Same as --path-pattern (older SPIKE spelling)", valueName: "regex" },
  permissions: {
    type: "string",
    description: "Comma-separated: read, write, list, execute, super",
    valueName: "list",
  },
} as const;

/** One flag given under either of its names (both only when they agree). */
function flagOrAlias(options: Record<string, unknown>, name: string, alias: string): string {
  const main = options[name];
  const old = options[alias];
  if (typeof main === "string" && typeof old === "string" && main !== old) {
    throw new UsageError(`--${name} and --${alias} disagree; give one`);
  }
  const value = typeof main === "string" ? main : old;
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

function policyFromFlags(options: Record<string, unknown>): PolicyInput {
  return {
    name: requireString(options, "name"),
    spiffeidPattern: flagOrAlias(options, "spiffeid-pattern", "spiffeid"),
    pathPattern: flagOrAlias(options, "path-pattern", "path"),
    permissions: parsePermissions(requireString(options, "permissions")),
  };
}

function requireString(options: Record<string, unknown>, name: string): string {
  const value = options[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

/** The `policy` command group. */
export const policyCommand: CommandSpec = {
  name: "policy",
  summary: "Manage access policies",
  subcommands: [
    {
      name: "create",
      summary: "Create a policy (fails when the name exists; apply changes one)",
      positionals: { min: 0, max: 0 },
      options: POLICY_FLAGS,
      run: async ({ options, io }) => {
        const policy = policyFromFlags(options);
        await savePolicy(io, policy, true);
        io.stderr(`OK: policy ${policy.name} created\n`);
        return 0;
      },
    },
    {
      name: "apply",
      summary: "Create or update a policy, from a YAML/JSON file or from flags",
      details: "The file takes what 'spike policy get -f yaml' (or -f json) prints, SPIKE's policy files, " +
        "and older SPIKE files with 'spiffeid' and 'path'.",
      positionals: { min: 0, max: 0 },
      options: {
        file: { type: "string", short: "f", description: "Policy file (YAML or JSON)", valueName: "path" },
        ...POLICY_FLAGS,
      },
      run: async ({ options, io }) => {
        const file = options.file;
        const flagged = Object.keys(POLICY_FLAGS).filter((flag) => options[flag] !== undefined);
        if (file !== undefined && flagged.length > 0) {
          throw new UsageError(`give either --file or the policy flags, not both (--${flagged[0]})`);
        }
        let policy: PolicyInput;
        if (file === undefined) {
          policy = policyFromFlags(options);
        } else {
          if (typeof file !== "string" || file === "") throw new UsageError("--file needs a path");
          let text: string;
          try {
            text = await Deno.readTextFile(file);
          } catch (error) {
            throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
          }
          policy = parsePolicyFile(text, file, (await import("yaml")).parse);
        }
        await savePolicy(io, policy, false);
        io.stderr(`OK: policy ${policy.name} applied\n`);
        return 0;
      },
    },
    {
      name: "list",
      summary: "List policies",
      positionals: { min: 0, max: 0 },
      options: {
        "spiffeid-pattern": {
          type: "string",
          description: "Only policies with exactly this ID pattern",
          valueName: "regex",
        },
        "path-pattern": {
          type: "string",
          description: "Only policies with exactly this path pattern",
          valueName: "regex",
        },
        ...FORMAT_OPTION,
      },
      run: async ({ options, io }) => {
        const format = outputFormat(options.format);
        const filter: { spiffeidPattern?: string; pathPattern?: string } = {};
        if (typeof options["spiffeid-pattern"] === "string") filter.spiffeidPattern = options["spiffeid-pattern"];
        if (typeof options["path-pattern"] === "string") filter.pathPattern = options["path-pattern"];
        const policies = await withNexus(io, ({ nexus }) => nexus.listPolicies(filter));
        if (format === "human") io.stdout(policies.map((p) => `${p.name}\n`).join(""));
        else io.stdout(await renderStructured(policies, format));
        return 0;
      },
    },
    {
      name: "get",
      summary: "Show a policy",
      args: "<name>",
      positionals: { min: 0, max: 1 },
      options: {
        name: { type: "string", description: "Policy name (instead of the argument)", valueName: "name" },
        ...FORMAT_OPTION,
      },
      run: async ({ positionals, options, io }) => {
        const format = outputFormat(options.format);
        const name = positionals[0] ?? requireString(options, "name");
        const policy = await withNexus(io, ({ nexus }) => getPolicyByName(nexus, name));
        if (format !== "human") {
          io.stdout(await renderStructured(policy, format));
          return 0;
        }
        io.stdout(
          [
            `name:             ${policy.name}`,
            `spiffeid pattern: ${policy.spiffiedPattern}`,
            `path pattern:     ${policy.pathPattern}`,
            `permissions:      ${policy.permissions.join(", ")}`,
            `created:          ${policy.createdAt}`,
            `updated:          ${policy.updatedAt}`,
          ].join("\n") + "\n",
        );
        return 0;
      },
    },
    {
      name: "delete",
      summary: "Delete a policy (asks first unless --yes)",
      args: "<name>",
      positionals: { min: 0, max: 1 },
      options: {
        name: { type: "string", description: "Policy name (instead of the argument)", valueName: "name" },
        yes: { type: "boolean", short: "y", description: "Do not ask for confirmation" },
      },
      run: async ({ positionals, options, io }) => {
        const name = positionals[0] ?? requireString(options, "name");
        if (!options.yes && !await confirm(io, `Delete policy '${name}'?`)) {
          throw new CliError("not deleted (answer 'y' or pass --yes)");
        }
        await withNexus(io, ({ nexus }) => deletePolicyByName(nexus, name));
        io.stderr(`OK: policy ${name} deleted\n`);
        return 0;
      },
    },
  ],
};
