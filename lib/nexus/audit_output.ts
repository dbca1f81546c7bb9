/**
 * Where Nexus writes its audit trail (`SPIKE_NEXUS_AUDIT_LOG`): JSON lines on
 * standard output (the default; diagnostics go to standard error, so the two
 * never mix), or appended to a file created with mode 0600. The file is
 * opened at start, so a path Nexus cannot write stops it there rather than
 * losing records later, and reopened on request (SIGHUP), so log rotation
 * can move it away without a restart.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import { type AuditSink, jsonLineAuditSink } from "./audit.ts";

/** An open audit output. */
export interface AuditOutput {
  /** Takes the records. */
  readonly sink: AuditSink;
  /**
   * Opens the file again by its path (after rotation moved it). On failure
   * the old file stays in use and the error is logged. No-op for stdout.
   */
  reopen(): void;
  /** Closes the file (nothing to do for standard output). */
  close(): void;
}

/**
 * Opens `target`: `stdout`, or a file path to append to. `onWriteFailure`
 * hears of every record that could not be written (for `/metrics`).
 */
export function openAuditOutput(target: string, log: Logger, onWriteFailure: () => void = () => {}): AuditOutput {
  const encoder = new TextEncoder();
  if (target === "stdout") {
    return {
      sink: jsonLineAuditSink((line) => writeAll(Deno.stdout, encoder.encode(line), log, onWriteFailure)),
      reopen() {},
      close() {},
    };
  }
  const open = () => {
    try {
      return Deno.openSync(target, { append: true, create: true, mode: 0o600 });
    } catch (error) {
      throw new Error(`cannot open SPIKE_NEXUS_AUDIT_LOG ${target}: ${(error as Error).message}`);
    }
  };
  let file = open();
  return {
    sink: jsonLineAuditSink((line) => writeAll(file, encoder.encode(line), log, onWriteFailure)),
    reopen() {
      try {
        const next = open();
        file.close();
        file = next;
        log.info("audit log reopened", { file: target });
      } catch (error) {
        log.error("audit log not reopened; still writing to the old file", { error: (error as Error).message });
      }
    },
    close: () => file.close(),
  };
}

/** Writes every byte (a short write continues); a failure is logged, never thrown into a request. */
function writeAll(
  target: { writeSync(bytes: Uint8Array): number },
  bytes: Uint8Array,
  log: Logger,
  onWriteFailure: () => void,
): void {
  try {
    let offset = 0;
    while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
  } catch (error) {
    onWriteFailure();
    log.error("audit record not written", { error: (error as Error).message });
  }
}
