/**
 * The process boundary a CLI command talks through, injected so commands can
 * be run in-process by tests.
 *
 * @module
 */

/** Standard streams and environment of one CLI invocation. */
export interface CliIo {
  /** Writes data (results) to standard output. */
  stdout(text: string): void;
  /** Writes raw bytes to standard output (cipher output). */
  stdoutBytes(bytes: Uint8Array): Promise<void>;
  /** Writes diagnostics to standard error. */
  stderr(text: string): void;
  /** Reads all of standard input. */
  readStdin(): Promise<Uint8Array>;
  /** Standard input as a stream, for input too large to hold (audit files). */
  stdinStream(): ReadableStream<Uint8Array>;
  /** Reads one line of standard input (without its newline); `null` at end of input. */
  readLine(): Promise<string | null>;
  /**
   * Reads one line without echoing it when standard input is a terminal
   * (for shards and passwords), showing `prompt` on stderr once echo is
   * off; like `readLine` (and no prompt) otherwise.
   */
  readHiddenLine(prompt: string): Promise<string | null>;
  /**
   * Reads standard input to its end. On a terminal it first turns echo off,
   * shows `prompt` on stderr, and reads until Ctrl-D (Enter adds a newline,
   * Backspace takes back a character, Ctrl-C aborts); otherwise it reads
   * silently. The caller zeroes the bytes when done.
   */
  readHiddenText(prompt: string): Promise<Uint8Array>;
  /** Whether standard input is a terminal (for hidden prompts). */
  stdinIsTerminal(): boolean;
  /** Whether standard output is a terminal (a value printed alone gets a newline only there). */
  stdoutIsTerminal(): boolean;
  /** The environment variables of the invocation. */
  readonly env: Readonly<Record<string, string>>;
}
