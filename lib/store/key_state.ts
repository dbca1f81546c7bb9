/**
 * The key state of a new store (and of a Nexus without a store): every
 * record under root key version 1, no rotation.
 *
 * @module
 */
import type { KeyState } from "./types.ts";

/** The key state every backend starts with. */
export const INITIAL_KEY_STATE: KeyState = Object.freeze({
  revision: 1,
  currentVersion: 1,
  phase: "idle",
  targetVersion: null,
  targetCheck: null,
  minWriteVersion: 1,
  leaseOwner: null,
  leaseUntil: null,
  startedAt: null,
  toReseal: 0,
});
