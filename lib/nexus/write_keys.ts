/**
 * Writing under the current root key version while another Nexus may
 * rotate it: the store refuses data sealed under a version it no longer
 * takes (`StaleKeyVersionError`), and then this Nexus catches up with the
 * store's key state and seals again. Secret writes and policy writes both
 * go through here.
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import { StaleKeyVersionError } from "../store/errors.ts";
import type { DerivedKeys, RootKeyState } from "./root_key_state.ts";

/** How often a write refused for its key version is retried after catching up. */
export const MAX_CATCH_UPS = 3;

/** Brings this Nexus's keys in line with the store's key state (another Nexus rotated). */
export interface KeyCatchUp {
  /** Resolves whether this Nexus now holds every version the store needs. */
  catchUp(): Promise<boolean>;
}

/**
 * Runs `write` with the write version's keys; when the store refuses it
 * for that version, catches up through `catchUp` (absent: no Keepers, so
 * none) and runs it again with the new keys, at most
 * {@linkcode MAX_CATCH_UPS} times. A catch-up that fails answers 503.
 */
export async function withWriteKeys<T>(
  keys: RootKeyState,
  catchUp: KeyCatchUp | undefined,
  write: (keys: DerivedKeys) => Promise<T>,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await write(keys.keys());
    } catch (error) {
      if (!(error instanceof StaleKeyVersionError) || attempt >= MAX_CATCH_UPS) throw error;
      if (!await (catchUp?.catchUp() ?? false)) {
        throw new ApiError("state_not_ready", "the store takes new data under a root key version not held");
      }
    }
  }
}
