/**
 * Where Nexus writes its audit lines (`SPIKE_NEXUS_AUDIT_LOG`): standard
 * output (the default; diagnostics go to standard error, so the two never
 * mix), or appended to a file created with mode 0600. The file is opened at
 * start, so a path Nexus cannot write stops it there rather than losing
 * records later, and can be opened again by path (SIGHUP), so log rotation
 * can move it away without a restart.
 *
 * A line is appended whole or not at all: when a write fails part way (a
 * full disk), the part already written is cut off again, so the next line
 * starts on a line of its own and the file never holds half a record.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { AuditKeySource } from "./audit_key.ts";
import { type AuditRowSink, AuditTrail } from "./audit_trail.ts";

/** An append-only line output. */
export interface LineTarget {
  /** `stdout`, or the file's path. */
  readonly name: string;
  /** Whether it is a file (which can be synced and reopened). */
  readonly isFile: boolean;
  /** Appends `line` and a newline, whole; throws when it cannot (nothing partial stays behind). */
  append(line: string): void;
  /** Makes what was appended durable (fdatasync); nothing to do for standard output. */
  sync(): Promise<void>;
  /** Opens the same path again as a new target; throws when it cannot. The old target stays open. */
  reopen(): LineTarget;
  /**
   * Syncs and closes it once syncs in flight are done; a `sync` asked for
   * afterwards waits for that last sync instead. Nothing to do for stdout.
   */
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** Opens `target`: `stdout`, or a file path to append to (created 0600). */
export function openLineTarget(target: string): LineTarget {
  if (target === "stdout") {
    return {
      name: "stdout",
      isFile: false,
      append: (line) => appendWhole(Deno.stdout, encoder.encode(line + "\n"), undefined),
      sync: () => Promise.resolve(),
      reopen: () => openLineTarget(target),
      close: () => Promise.resolve(),
    };
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(target, { append: true, create: true, mode: 0o600 });
  } catch (error) {
    throw new Error(`cannot open SPIKE_NEXUS_AUDIT_LOG ${target}: ${(error as Error).message}`);
  }
  // A request may still be syncing the old file after rotation swapped it
  // out: the file closes only when no sync is running, after a final one.
  let inFlight = 0;
  let idle: (() => void) | undefined;
  let closing: Promise<void> | undefined;
  const sync = async () => {
    if (closing) return await closing;
    inFlight++;
    try {
      await file.syncData();
    } finally {
      if (--inFlight === 0) idle?.();
    }
  };
  return {
    name: target,
    isFile: true,
    append: (line) => appendWhole(file, encoder.encode(line + "\n"), file),
    sync,
    reopen: () => openLineTarget(target),
    close() {
      closing ??= (async () => {
        try {
          if (inFlight > 0) await new Promise<void>((resolve) => idle = resolve);
          await file.syncData();
        } finally {
          file.close();
        }
      })();
      return closing;
    },
  };
}

/**
 * Writes every byte (a short write continues). On failure after a partial
 * write, a file is truncated back to where the line began.
 */
function appendWhole(
  target: { writeSync(bytes: Uint8Array): number },
  bytes: Uint8Array,
  file: Deno.FsFile | undefined,
): void {
  let offset = 0;
  try {
    while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
  } catch (error) {
    if (offset > 0 && file) {
      try {
        file.truncateSync(file.statSync().size - offset);
      } catch {
        // The cut failed as well: the verifier will report the broken line.
      }
    }
    throw error;
  }
}

/** An open audit trail with its output. */
export interface AuditOutput {
  /** The trail (records go here). */
  readonly sink: AuditTrail;
  /** Opens the file again by its path (after rotation moved it); no-op for stdout. */
  reopen(): void;
  /** Writes the stop record, waits for the table, closes the file. */
  close(): Promise<void>;
}

/** Settings of {@linkcode openAuditOutput}. */
export interface AuditOutputOptions {
  /** Where audit keys come from (absent: every record stays unkeyed, for tools and tests). */
  readonly keys?: AuditKeySource;
  /** Refuse requests whose record cannot be written (`SPIKE_NEXUS_AUDIT_FAIL_CLOSED`). */
  readonly failClosed?: boolean;
  /** The audit table, when records also go to the database (`SPIKE_NEXUS_AUDIT_TABLE`). */
  readonly table?: AuditRowSink;
  /** Wall clock. */
  readonly clock?: () => Date;
  /** Hears how many records could not be stored, each time that happens (for `/metrics`). */
  readonly onWriteFailure?: (records: number) => void;
}

/**
 * Opens `target` and starts a trail on it (its first record is the chain's
 * start record). Throws when the target cannot be opened, or, fail-closed,
 * when the start record cannot be written.
 */
export async function openAuditOutput(
  target: string,
  log: Logger,
  options: AuditOutputOptions = {},
): Promise<AuditOutput> {
  const trail = new AuditTrail({
    target: openLineTarget(target),
    log,
    clock: options.clock ?? (() => new Date()),
    failClosed: options.failClosed ?? false,
    ...(options.keys ? { keys: options.keys } : {}),
    ...(options.table ? { table: options.table } : {}),
    ...(options.onWriteFailure ? { onWriteFailure: options.onWriteFailure } : {}),
  });
  try {
    await trail.start();
  } catch (error) {
    await trail.close();
    throw error;
  }
  return { sink: trail, reopen: () => trail.reopen(), close: () => trail.close() };
}
