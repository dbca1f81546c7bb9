/**
 * The contract's no-caching response headers, set on every answer of every
 * role (API responses carry secrets; nothing may keep them).
 *
 * @module
 */

/** `Cache-Control`, `Pragma` and `Expires` as the wire contract fixes them. */
export const NO_CACHE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "cache-control": "no-store, no-cache, must-revalidate, private",
  pragma: "no-cache",
  expires: "0",
});

/** Hono middleware adding {@linkcode NO_CACHE_HEADERS} to every response. */
export async function noCache(c: { res: Response }, next: () => Promise<void>): Promise<void> {
  await next();
  setNoCacheHeaders(c.res.headers);
}

/** Sets {@linkcode NO_CACHE_HEADERS} on `headers`. */
export function setNoCacheHeaders(headers: Headers): void {
  for (const [name, value] of Object.entries(NO_CACHE_HEADERS)) headers.set(name, value);
}
