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
