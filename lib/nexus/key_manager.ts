/**
 * Where the routes find the parts of key management that start after the
 * app is built: the Keeper exchange (which follows the store's key state)
 * and the rotation coordinator. Both are absent when Nexus runs without
 * Keepers; then a rotation cannot be started and a rotation made elsewhere
 * cannot be followed.
 *
 * @module
 */
import type { KeeperSync, KeeperView } from "./keeper_sync.ts";
import type { KeyRotation } from "./key_rotation.ts";
import type { KeyCatchUp } from "./write_keys.ts";

/** The key management parts of a running Nexus. */
export class KeyManager implements KeyCatchUp {
  #sync: KeeperSync | undefined;
  #rotation: KeyRotation | undefined;

  /** Attaches the Keeper exchange and the rotation coordinator once they run. */
  attach(sync: KeeperSync, rotation: KeyRotation | undefined): void {
    this.#sync = sync;
    this.#rotation = rotation;
  }

  /** The rotation coordinator, when Nexus has Keepers and a store. */
  get rotation(): KeyRotation | undefined {
    return this.#rotation;
  }

  /** What is known of each Keeper (empty without Keepers). */
  keepers(): KeeperView[] {
    return this.#sync?.keepers() ?? [];
  }

  /** Follows a rotation made by another Nexus (see `KeeperSync.catchUp`); `false` without Keepers. */
  catchUp(): Promise<boolean> {
    return this.#sync?.catchUp() ?? Promise.resolve(false);
  }
}
