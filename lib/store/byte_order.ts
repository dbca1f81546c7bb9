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

/**
 * The least string above every string that starts with `prefix`, in byte
 * order, or `undefined` when there is none (`""`, or a prefix of only
 * U+10FFFF). So `s.startsWith(prefix)` exactly when
 * `prefix ≤ s < prefixUpperBound(prefix)`, which lets a sorted index answer
 * a prefix query as one range. UTF-8 byte order is code point order, so
 * raising the last code point by one gives the bound (skipping the
 * surrogate range, which no stored text holds).
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0)!);
  while (points.length > 0) {
    const last = points.pop()!;
    if (last < 0x10ffff) {
      points.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...points);
    }
  }
  return undefined;
}

/**
 * The one key range a page of paths covers: from the prefix (inclusive) or
 * from the cursor `after` (exclusive), whichever is later, up to the
 * prefix's upper bound (none: to the end). Backends scan exactly this, so a
 * page deep into a long list costs what the first one does.
 */
export function pageRange(query: { readonly prefix?: string; readonly after?: string }): {
  from: string;
  inclusive: boolean;
  upper: string | undefined;
} {
  const prefix = query.prefix ?? "";
  const after = query.after;
  const fromCursor = after !== undefined && compareByteOrder(after, prefix) >= 0;
  return { from: fromCursor ? after : prefix, inclusive: !fromCursor, upper: prefixUpperBound(prefix) };
}
