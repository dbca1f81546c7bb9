/**
 * The one ordering every backend uses for listings: UTF-8 byte order, which
 * is what SQLite's BINARY collation, Postgres' `COLLATE "C"` and Go's
 * `sort.Strings` (SPIKE) produce. JavaScript's `<` compares UTF-16 code
 * units, which differs for characters above U+FFFF.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Compares two strings by their UTF-8 bytes; usable with `Array.prototype.sort`. */
export function compareByteOrder(a: string, b: string): number {
  if (a === b) return 0;
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x[i]! - y[i]!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
