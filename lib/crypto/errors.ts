/**
 * The one error type of `lib/crypto`.
 *
 * Messages name what was wrong with an input (a length, a count, a range),
 * never its content: a key, share, nonce or plaintext must not reach a log
 * through an error message.
 *
 * @module
 */

/** Raised for invalid input to, or a failed check in, a crypto operation. */
export class CryptoError extends Error {
  override name = "CryptoError";

  /** @param message says what was wrong, never the data itself */
  constructor(message: string) {
    super(message);
  }
}
