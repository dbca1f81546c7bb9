/**
 * `spike cipher encrypt|decrypt`: encryption as a service. Reads a file or
 * standard input, writes a file or standard output. The default is the
 * binary (octet-stream) mode; `--json` uses the JSON envelope instead.
 *
 * @module
 */
import { decodeBase64, encodeBase64 } from "../lib/api/base64.ts";
import type { CommandContext, CommandSpec } from "../lib/cli/command.ts";
import { CliError } from "../lib/cli/errors.ts";
import type { CliIo } from "../lib/cli/io.ts";
import type { CipherEnvelope } from "../lib/client/nexus_client.ts";
import { zeroize } from "../lib/crypto/zeroize.ts";
import { withNexus } from "./pilot_session.ts";

const IO_OPTIONS = {
  file: { type: "string", short: "f", description: "Read input from this file (default: stdin)", valueName: "path" },
  out: { type: "string", short: "o", description: "Write output to this file (default: stdout)", valueName: "path" },
  json: { type: "boolean", description: "Use the JSON API mode (base64 envelope) instead of binary" },
} as const;

async function readInput(options: CommandContext["options"], io: CliIo): Promise<Uint8Array> {
  const file = options.file as string | undefined;
  if (file === undefined) return await io.readStdin();
  try {
    return await Deno.readFile(file);
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

async function writeOutput(options: CommandContext["options"], io: CliIo, bytes: Uint8Array): Promise<void> {
  const file = options.out as string | undefined;
  if (file === undefined) return await io.stdoutBytes(bytes);
  try {
    await Deno.writeFile(file, bytes, { mode: 0o600 });
  } catch (error) {
    throw new CliError(`cannot write ${file}: ${(error as Error).message}`);
  }
}

function parseEnvelope(bytes: Uint8Array): CipherEnvelope {
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof value?.nonce === "string" && typeof value?.ciphertext === "string") {
      return {
        version: typeof value.version === "number" ? value.version : 1,
        nonce: value.nonce,
        ciphertext: value.ciphertext,
      };
    }
  } catch {
    // fall through to the error below
  }
  throw new CliError('input is not a JSON envelope {"version":1,"nonce":"...","ciphertext":"..."}');
}

/** The `cipher` command group. */
export const cipherCommand: CommandSpec = {
  name: "cipher",
  summary: "Encrypt and decrypt data with Nexus (the key never leaves Nexus)",
  subcommands: [
    {
      name: "encrypt",
      summary: "Encrypt data",
      positionals: { min: 0, max: 0 },
      options: IO_OPTIONS,
      run: async ({ options, io }) => {
        const input = await readInput(options, io);
        try {
          const output = await withNexus(io, async ({ nexus }) => {
            if (!options.json) return await nexus.encryptBytes(input);
            const envelope = await nexus.encryptJson(encodeBase64(input));
            return new TextEncoder().encode(JSON.stringify(envelope) + "\n");
          });
          await writeOutput(options, io, output);
        } finally {
          zeroize(input);
        }
        return 0;
      },
    },
    {
      name: "decrypt",
      summary: "Decrypt data produced by 'spike cipher encrypt'",
      positionals: { min: 0, max: 0 },
      options: IO_OPTIONS,
      run: async ({ options, io }) => {
        const input = await readInput(options, io);
        const output = await withNexus(io, async ({ nexus }) => {
          if (!options.json) return await nexus.decryptBytes(input);
          const plaintext = decodeBase64(await nexus.decryptJson(parseEnvelope(input)));
          if (!plaintext) throw new CliError("Nexus answered with a plaintext that is not base64");
          return plaintext;
        });
        try {
          await writeOutput(options, io, output);
        } finally {
          zeroize(output);
        }
        return 0;
      },
    },
  ],
};
