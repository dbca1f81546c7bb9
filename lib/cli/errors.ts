/**
 * Errors a CLI command throws to choose its message and exit code.
 *
 * @module
 */

/** A failure the user should read: printed as `spike <cmd>: message`, exit 1 by default. */
export class CliError extends Error {
  /** The process exit code to use. */
  readonly exitCode: number;
  /** Creates a CLI error with a user-facing message. */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** Wrong arguments: printed with the command's usage, exit 2. */
export class UsageError extends Error {
  /** Creates a usage error with a user-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
