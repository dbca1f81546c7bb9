/**
 * The real process streams and environment, for `cmd/spike.ts`. This is the
 * one place that reads `Deno.env`; everything else receives it.
 *
 * @module
 */
import { CliError } from "../lib/cli/errors.ts";
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
    readStdin: () => readAllStdin(),
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
    readHiddenText: async (prompt) => {
      if (!Deno.stdin.isTerminal()) return await readAllStdin();
      Deno.stdin.setRaw(true);
      // Prompt only once echo is off, so nothing typed after it can show.
      writeAllSync(Deno.stderr, encoder.encode(prompt));
      try {
        return await readTypedText();
      } finally {
        Deno.stdin.setRaw(false);
        writeAllSync(Deno.stderr, encoder.encode("\n"));
      }
    },
    stdinIsTerminal: () => Deno.stdin.isTerminal(),
    stdoutIsTerminal: () => Deno.stdout.isTerminal(),
    env: Deno.env.toObject(),
  };
}

async function readAllStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

/**
 * Reads what is typed at a raw-mode terminal until Ctrl-D. Raw mode hands
 * over every key: Enter arrives as "\r" (kept as "\n"), Backspace as DEL,
 * Ctrl-C as 0x03 (abort), arrow keys as escape sequences (dropped, like
 * other control characters but Tab). Buffers that are outgrown are zeroed.
 */
async function readTypedText(): Promise<Uint8Array> {
  let text = new Uint8Array(256);
  let length = 0;
  const chunk = new Uint8Array(1024);
  // 0: plain text; 1: just after ESC; 2: inside a CSI/SS3 sequence (until its final byte).
  let escape = 0;
  try {
    while (true) {
      const n = await Deno.stdin.read(chunk);
      if (n === null) break;
      for (const byte of chunk.subarray(0, n)) {
        if (escape === 1) {
          escape = byte === 0x5b || byte === 0x4f ? 2 : 0;
          continue;
        }
        if (escape === 2) {
          if (byte >= 0x40 && byte <= 0x7e) escape = 0;
          continue;
        }
        if (byte === 0x1b) {
          escape = 1;
          continue;
        }
        if (byte === 0x04) return text.slice(0, length);
        if (byte === 0x03) throw new CliError("interrupted");
        if (byte === 0x7f || byte === 0x08) {
          // Take back one character: its UTF-8 continuation bytes and its first byte.
          while (length > 0 && (text[length - 1]! & 0xc0) === 0x80) length--;
          if (length > 0) length--;
          continue;
        }
        if (byte < 0x20 && byte !== 0x0d && byte !== 0x0a && byte !== 0x09) continue;
        if (length === text.length) {
          const bigger = new Uint8Array(text.length * 2);
          bigger.set(text);
          text.fill(0);
          text = bigger;
        }
        text[length++] = byte === 0x0d ? 0x0a : byte;
      }
    }
    return text.slice(0, length);
  } finally {
    text.fill(0);
    chunk.fill(0);
  }
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
