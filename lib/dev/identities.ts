/**
 * The identities of the dev stack: one SVID directory per component, minted
 * by the development CA in `<dir>/ca`.
 *
 * @module
 */
import { join } from "node:path";
import type { X509Identity } from "../spiffe/identity.ts";
import { loadOrCreateDevCa, writeSvidFiles } from "../spiffe/dev_ca.ts";

/** Component name → SPIFFE ID path (under `spiffe://<td>/`). */
export function devIdentityPaths(keepers: number): Record<string, string> {
  const paths: Record<string, string> = {
    nexus: "spike/nexus",
    bootstrap: "spike/bootstrap",
    "pilot-superuser": "spike/pilot/role/superuser",
    "pilot-recover": "spike/pilot/role/recover",
    "pilot-restore": "spike/pilot/role/restore",
  };
  for (let i = 1; i <= keepers; i++) paths[`keeper-${i}`] = `spike/keeper/${i}`;
  return paths;
}

/** Minted identities by component name, and where their files are. */
export interface DevIdentities {
  /** In-memory identities (the dev process itself uses the pilot ones). */
  readonly byName: ReadonlyMap<string, X509Identity>;
  /** SVID directory of a component. */
  dirOf(name: string): string;
}

/**
 * Loads (or creates) the CA in `<dir>/ca` and writes a fresh SVID for every
 * component into `<dir>/identities/<name>/`. SVIDs are re-minted at every
 * start, so they never expire under a long-lived dev directory.
 */
export async function mintDevIdentities(dir: string, trustDomain: string, keepers: number): Promise<DevIdentities> {
  const ca = await loadOrCreateDevCa(join(dir, "ca"), { trustDomain });
  const byName = new Map<string, X509Identity>();
  const dirOf = (name: string) => join(dir, "identities", name);
  for (const [name, path] of Object.entries(devIdentityPaths(keepers))) {
    const identity = await ca.issue(`spiffe://${trustDomain}/${path}`);
    await writeSvidFiles(dirOf(name), identity);
    byName.set(name, identity);
  }
  return { byName, dirOf };
}
