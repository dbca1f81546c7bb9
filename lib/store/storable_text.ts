/**
 * The one rule every backend's text columns share, so the API can refuse
 * (400) what a store could not keep as given.
 *
 * @module
 */

/**
 * True when `text` survives a round trip through UTF-8 and any SQL text
 * column: no lone UTF-16 surrogate (UTF-8 encoders turn it into U+FFFD, a
 * different string) and no NUL (Postgres text cannot hold it).
 */
export function storableText(text: string): boolean {
  return text.isWellFormed() && !text.includes("\0");
}
