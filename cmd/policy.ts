/**
 * `spike policy ...`: create, apply, list, get and delete access policies.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import type { CliIo } from "../lib/cli/io.ts";
import { type Permission, PERMISSIONS } from "../lib/api/validate.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import type { PolicyInput } from "../lib/client/nexus_client.ts";
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

/** Reads a policy YAML/JSON file (`name`, `spiffeidPattern`, `pathPattern`, `permissions`). */
export function parsePolicyFile(text: string, source: string): PolicyInput {
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
  const field = (...names: string[]) => {
    for (const n of names) if (typeof d[n] === "string" && d[n] !== "") return d[n] as string;
    throw new CliError(`${source}: '${names[0]}' is missing or not a string`);
  };
  return {
    name: field("name"),
    spiffeidPattern: field("spiffeidPattern", "spiffeIdPattern", "spiffeid_pattern"),
    pathPattern: field("pathPattern", "path_pattern"),
    permissions: parsePermissions(d.permissions),
  };
}

/** Sends a policy; a 400 gets a message naming what Nexus checks. */
async function savePolicy(io: CliIo, policy: PolicyInput): Promise<void> {
  await withNexus(io, async ({ nexus }) => {
    try {
      await nexus.putPolicy(policy);
    } catch (error) {
      if (error instanceof ApiCallError && error.status === 400) {
        throw new CliError(
          "Nexus refused the policy as invalid: the name allows letters, digits, '-', '_' and spaces, and both " +
            "patterns must be regular expressions that run in linear time (no backreferences or lookaround)",
        );
      }
      throw error;
    }
  });
}

async function confirm(io: CliIo, question: string): Promise<boolean> {
  io.stderr(`${question} [y/N] `);
  const answer = (await io.readLine() ?? "").trim().toLowerCase();
  return answer === "y" || answer === "yes";
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
      summary: "Create or update a policy",
      positionals: { min: 0, max: 0 },
      options: {
        name: { type: "string", description: "Policy name", valueName: "name" },
        "spiffeid-pattern": {
          type: "string",
          description: "Regex matched against the caller's SPIFFE ID",
          valueName: "regex",
        },
        "path-pattern": { type: "string", description: "Regex matched against the secret path", valueName: "regex" },
        permissions: {
          type: "string",
          description: "Comma-separated: read, write, list, execute, super",
          valueName: "list",
        },
      },
      run: async ({ options, io }) => {
        const policy: PolicyInput = {
          name: requireString(options, "name"),
          spiffeidPattern: requireString(options, "spiffeid-pattern"),
          pathPattern: requireString(options, "path-pattern"),
          permissions: parsePermissions(requireString(options, "permissions")),
        };
        await savePolicy(io, policy);
        io.stderr(`OK: policy ${policy.name} saved\n`);
        return 0;
      },
    },
    {
      name: "apply",
      summary: "Create or update a policy from a YAML file",
      positionals: { min: 0, max: 0 },
      options: { file: { type: "string", description: "Policy file (YAML or JSON)", valueName: "path" } },
      run: async ({ options, io }) => {
        const file = requireString(options, "file");
        let text: string;
        try {
          text = await Deno.readTextFile(file);
        } catch (error) {
          throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
        }
        const policy = parsePolicyFile(text, file);
        await savePolicy(io, policy);
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
        else io.stdout(renderStructured(policies, format));
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
        const policy = await withNexus(io, ({ nexus }) => nexus.getPolicy(name));
        if (format !== "human") {
          io.stdout(renderStructured(policy, format));
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
        await withNexus(io, ({ nexus }) => nexus.deletePolicy(name));
        io.stderr(`OK: policy ${name} deleted\n`);
        return 0;
      },
    },
  ],
};
