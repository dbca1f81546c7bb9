/**
 * The key state of a new store (and of a Nexus without a store): every
 * record under root key version 1, no rotation.
 *
 * @module
 */
import type { KeyState, KeyStateChange } from "./types.ts";

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

/** The same state as a change (no revision): what finishing a rotation, or a test, builds on. */
export const IDLE_KEY_STATE_CHANGE: KeyStateChange = Object.freeze(
  (({ revision: _, ...change }) => change)(INITIAL_KEY_STATE),
);
