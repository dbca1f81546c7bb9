/**
 * Wiping secret buffers after use.
 *
 * Best effort only: JavaScript gives no control over copies. The garbage
 * collector may have moved a buffer's bytes before, strings and bigints
 * derived from a secret are immutable and cannot be wiped, and bytes handed to
 * native code (WebCrypto keys, TLS) live outside our reach. Zeroing still
 * shortens the window in which a heap dump or a reused buffer shows a key.
 *
 * @module
 */

/** Overwrites every given buffer with zeros; `undefined` entries are skipped. */
export function zeroize(...bufs: (Uint8Array | undefined)[]): void {
  for (const buf of bufs) buf?.fill(0);
}

/**
 * Runs `fn(buf)` and zeroes `buf` afterwards, whether `fn` returns, throws or
 * (when it returns a promise) settles either way.
 */
export function withZeroized<T>(
  buf: Uint8Array,
  fn: (buf: Uint8Array) => Promise<T>,
): Promise<T>;
/** Synchronous form: zeroes `buf` once `fn` returns or throws. */
export function withZeroized<T>(buf: Uint8Array, fn: (buf: Uint8Array) => T): T;
export function withZeroized<T>(
  buf: Uint8Array,
  fn: (buf: Uint8Array) => T | Promise<T>,
): T | Promise<T> {
  let result: T | Promise<T>;
  try {
    result = fn(buf);
  } catch (err) {
    buf.fill(0);
    throw err;
  }
  if (result instanceof Promise) {
    return result.finally(() => buf.fill(0));
  }
  buf.fill(0);
  return result;
}
