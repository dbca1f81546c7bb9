/**
 * Policies at rest: everything but the name (patterns, permissions, times)
 * is sealed with the policies key of a root key version, with the name bound
 * in as associated data. A row someone wrote, edited or moved to another
 * name in the database fails to open, and a policy that fails to open is
 * treated as absent: it can deny, never grant.
 *
 * Sealed content (UTF-8 JSON, before sealing):
 * `{"spiffeIdPattern":…,"pathPattern":…,"permissions":[…],"createdAt":ms,"updatedAt":ms}`.
 *
 * @module
 */
import { type AeadKey, open, seal } from "../crypto/aead.ts";
import { KeyPurpose } from "../crypto/kdf.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { zeroize } from "../crypto/zeroize.ts";
import { PERMISSIONS } from "../api/validate.ts";
import type { Permission, PolicyRecord, SealedPolicy } from "../store/types.ts";
import { importDerivedKey } from "./root_key_state.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Associated data of a sealed policy: binds its name, so content copied to
 * another name fails. The key version needs no binding: each version has its
 * own key, so a row relabelled with another version fails to open anyway.
 */
export function policyAad(name: string): Uint8Array {
  return encoder.encode(`spike/v1/policy\0${name}`);
}

/** Seals `policy` under `key` (the policies key of root key version `keyVersion`). */
export async function sealPolicy(
  key: AeadKey,
  keyVersion: number,
  policy: PolicyRecord,
  random: RandomBytes,
): Promise<SealedPolicy> {
  const plaintext = encoder.encode(JSON.stringify({
    spiffeIdPattern: policy.spiffeIdPattern,
    pathPattern: policy.pathPattern,
    permissions: [...policy.permissions],
    createdAt: policy.createdAt.getTime(),
    updatedAt: policy.updatedAt.getTime(),
  }));
  try {
    return { name: policy.name, keyVersion, sealed: await seal(key, plaintext, policyAad(policy.name), random) };
  } finally {
    zeroize(plaintext);
  }
}

/**
 * Opens a sealed policy row with `key` (the policies key of its version).
 *
 * @throws when the row does not open (tampered, or another key) or what it
 *   holds is not a policy; the message never carries row content
 */
export async function openPolicy(key: AeadKey, row: SealedPolicy): Promise<PolicyRecord> {
  const plaintext = await open(key, row.sealed, policyAad(row.name));
  try {
    const content = JSON.parse(decoder.decode(plaintext));
    const policy: PolicyRecord = {
      name: row.name,
      spiffeIdPattern: content?.spiffeIdPattern,
      pathPattern: content?.pathPattern,
      permissions: content?.permissions,
      createdAt: new Date(content?.createdAt),
      updatedAt: new Date(content?.updatedAt),
    };
    if (!wellFormed(policy)) throw new Error("sealed policy content is not a policy");
    return policy;
  } finally {
    zeroize(plaintext);
  }
}

/** Authentic content is always well formed; this guards against our own mistakes, not attackers. */
function wellFormed(p: PolicyRecord): boolean {
  return typeof p.spiffeIdPattern === "string" && typeof p.pathPattern === "string" &&
    Array.isArray(p.permissions) && p.permissions.every((x) => PERMISSIONS.includes(x as Permission)) &&
    !Number.isNaN(p.createdAt.getTime()) && !Number.isNaN(p.updatedAt.getTime());
}

/**
 * A sealer for many policies under one root key (tools, seeding tests and
 * benchmarks): derives and imports the policies key once.
 */
export async function policySealer(
  rootKey: Uint8Array,
  keyVersion: number,
  random: RandomBytes,
): Promise<(policy: PolicyRecord) => Promise<SealedPolicy>> {
  const key = await importDerivedKey(rootKey, KeyPurpose.policies);
  return (policy) => sealPolicy(key, keyVersion, policy, random);
}
