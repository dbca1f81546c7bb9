/**
 * The real process streams and environment, for `cmd/spike.ts`. This is the
 * one place that reads `Deno.env`; everything else receives it.
 *
 * @module
 */
import type { CliIo } from "../lib/cli/io.ts";

/** The real process streams. */
export function processIo(): CliIo {
  const encoder = new TextEncoder();
  return {
    stdout: (text) => writeAllSync(Deno.stdout, encoder.encode(text)),
    stdoutBytes: async (bytes) => {
      let offset = 0;
      while (offset < bytes.length) offset += await Deno.stdout.write(bytes.subarray(offset));
    },
    stderr: (text) => writeAllSync(Deno.stderr, encoder.encode(text)),
    readStdin: async () => new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer()),
    stdinStream: () => Deno.stdin.readable,
    readLine: () => readLineFromStdin(),
    readHiddenLine: async (prompt) => {
      if (!Deno.stdin.isTerminal()) return await readLineFromStdin();
      Deno.stdin.setRaw(true);
      // Prompt only once echo is off, so nothing typed after it can show.
      writeAllSync(Deno.stderr, encoder.encode(prompt));
      try {
        return await readLineFromStdin();
      } finally {
        Deno.stdin.setRaw(false);
        writeAllSync(Deno.stderr, encoder.encode("\n"));
      }
    },
    stdinIsTerminal: () => Deno.stdin.isTerminal(),
    env: Deno.env.toObject(),
  };
}

function writeAllSync(target: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
}

/**
 * Reads byte by byte up to a newline so nothing after the line is consumed
 * (a later prompt in the same process still sees its input).
 */
async function readLineFromStdin(): Promise<string | null> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  let ended = false;
  try {
    while (true) {
      const n = await Deno.stdin.read(one);
      if (n === null) {
        ended = true;
        break;
      }
      // In raw mode Enter arrives as "\r"; Ctrl-C as 0x03.
      if (one[0] === 0x0a || one[0] === 0x0d) break;
      if (one[0] === 0x03) throw new Error("interrupted");
      bytes.push(one[0]!);
    }
    if (ended && bytes.length === 0) return null;
    const line = new Uint8Array(bytes);
    const text = new TextDecoder().decode(line);
    line.fill(0);
    return text;
  } finally {
    bytes.fill(0);
    one.fill(0);
  }
}
