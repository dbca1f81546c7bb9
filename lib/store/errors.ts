/**
 * Errors a store raises on purpose (as opposed to a backend failing).
 *
 * @module
 */

/**
 * A write sealed under a root key version the store no longer accepts for
 * new data (below the key state's `minWriteVersion`): the writer missed a
 * rotation. It should catch up with the store's key state and write again.
 */
export class StaleKeyVersionError extends Error {
  /** The version the write was sealed under. */
  readonly sealedUnder: number;
  /** The lowest version the store accepts. */
  readonly minWriteVersion: number;

  /** Creates the error. */
  constructor(sealedUnder: number, minWriteVersion: number) {
    super(
      `store: write sealed under root key version ${sealedUnder}, but the store takes new data only under ` +
        `version ${minWriteVersion} or later`,
    );
    this.name = "StaleKeyVersionError";
    this.sealedUnder = sealedUnder;
    this.minWriteVersion = minWriteVersion;
  }
}

/** Rebuilds a `StaleKeyVersionError` from its message (it crossed a thread as name and message). */
export function staleKeyVersionErrorFrom(message: string): StaleKeyVersionError {
  const match = /version (\d+), but .* version (\d+) or later/.exec(message);
  return new StaleKeyVersionError(Number(match?.[1] ?? 0), Number(match?.[2] ?? 0));
}
