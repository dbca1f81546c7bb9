/**
 * The error `spike dev` reports to the user.
 *
 * @module
 */

/** A problem that stops `spike dev`, with an operator-facing message. */
export class DevStackError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "DevStackError";
  }
}
