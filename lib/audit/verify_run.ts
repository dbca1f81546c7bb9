/**
 * Runs a verification over files: reads lines in bounded chunks, asks a
 * MAC checker about the keyed records of each chunk in one go (Nexus over
 * the network, a key rebuilt from recovery shards, or nobody), and feeds
 * the verifier in input order. Stops reading once the first bad record is
 * certain.
 *
 * @module
 */
import { type AuditMacKey, type ChainedRecord, macMatches, parseChainedLine } from "./chain_format.ts";
import { ChainVerifier, type MacVerdict, type VerifierOptions, type VerifyReport } from "./verifier.ts";

/** One line of input with where it came from. */
export interface InputLine {
  /** File name as given (`-` for standard input). */
  readonly source: string;
  /** 1-based line number in that file. */
  readonly line: number;
  /** The text, without its newline. */
  readonly text: string;
}

/** Judges the MACs of keyed records; one verdict per record, in order. */
export interface MacChecker {
  /** Verdicts for `records` (their lines and parses). */
  check(records: ReadonlyArray<{ readonly line: string; readonly record: ChainedRecord }>): Promise<MacVerdict[]>;
}

/** Checks MACs with keys held here (offline verification). */
export function localMacChecker(keys: readonly AuditMacKey[]): MacChecker {
  const byVersion = new Map(keys.map((key) => [key.version, key]));
  return {
    check: (records) =>
      Promise.resolve(records.map(({ record }) => {
        const key = byVersion.get(record.chain.keyVersion!);
        if (!key) return "unknown_key";
        return macMatches(key, record) ? "ok" : "mismatch";
      })),
  };
}

/** Checks nothing: order and links only (`--unkeyed`). */
export const noMacChecker: MacChecker = {
  check: (records) => Promise.resolve(records.map(() => "unchecked" as const)),
};

/** Limits of one chunk sent to a checker. */
export interface ChunkLimits {
  /** Most lines per chunk (default 500). */
  readonly lines?: number;
  /** Most characters of keyed lines per chunk (default 256 KiB). */
  readonly chars?: number;
}

/** Verifies `input` with `checker`. */
export async function verifyLines(
  lines: AsyncIterable<InputLine>,
  checker: MacChecker,
  options: VerifierOptions & { readonly chunk?: ChunkLimits } = {},
): Promise<VerifyReport> {
  const verifier = new ChainVerifier(options);
  const maxLines = options.chunk?.lines ?? 500;
  const maxChars = options.chunk?.chars ?? 256 * 1024;
  let chunk: Array<{ input: InputLine; record: ChainedRecord | string }> = [];
  let chars = 0;
  const flush = async () => {
    const keyed = chunk.flatMap((item, i) =>
      typeof item.record !== "string" && item.record.chain.keyVersion !== null
        ? [{ i, line: item.input.text, record: item.record }]
        : []
    );
    const verdicts = keyed.length > 0 ? await checker.check(keyed) : [];
    const byIndex = new Map(keyed.map((item, n) => [item.i, verdicts[n] ?? "unknown_key"]));
    for (const [i, item] of chunk.entries()) {
      verifier.add(item.record, item.input.text, item.input, byIndex.get(i) ?? "unchecked");
    }
    chunk = [];
    chars = 0;
  };
  for await (const input of lines) {
    // Blank lines carry nothing (a trailing newline, concatenated files).
    if (input.text.trim() === "") continue;
    const record = parseChainedLine(input.text);
    chunk.push({ input, record });
    if (typeof record !== "string" && record.chain.keyVersion !== null) chars += input.text.length;
    if (chunk.length >= maxLines || chars >= maxChars) {
      await flush();
      if (verifier.settled) break;
    }
  }
  if (chunk.length > 0) await flush();
  return verifier.finish();
}

const MAX_PENDING = 1024 * 1024;

/** Lines of the files named (`-` = standard input), in order; throws when one cannot be opened. */
export async function* readInputLines(
  sources: readonly string[],
  stdin: () => ReadableStream<Uint8Array> = () => Deno.stdin.readable,
): AsyncGenerator<InputLine> {
  for (const source of sources) {
    let stream: ReadableStream<Uint8Array>;
    if (source === "-") stream = stdin();
    else {
      const file = await Deno.open(source, { read: true });
      stream = file.readable;
    }
    let number = 0;
    let pending = "";
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const text of lines) yield { source, line: ++number, text };
      // No newline in sight for far longer than any record: hand it over as
      // one (over-long, so malformed) line instead of buffering it all.
      if (pending.length > MAX_PENDING) {
        yield { source, line: ++number, text: pending.slice(0, MAX_PENDING) };
        pending = "";
      }
    }
    pending += decoder.decode();
    if (pending !== "") yield { source, line: ++number, text: pending };
  }
}
