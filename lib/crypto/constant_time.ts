/**
 * Constant-time byte comparison for secrets, tokens and tags.
 *
 * @module
 */

/**
 * Compares two byte arrays in time that depends only on their length, not on
 * where they differ. Lengths are not secret: a length mismatch returns
 * `false` at once.
 *
 * JavaScript offers no hard guarantee against a JIT shortcut; this is the
 * usual accumulate-the-XOR loop with no data-dependent branch.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    diff |= a[i]! ^ b[i]!;
  }
  return diff === 0;
}

/**
 * Whether every byte of `bytes` is zero, in time that depends only on its
 * length (an early exit would tell where the first non-zero byte of a
 * shard or key sits).
 */
export function isAllZero(bytes: Uint8Array): boolean {
  let any = 0;
  for (let i = 0; i < bytes.length; i++) any |= bytes[i]!;
  return any === 0;
}
