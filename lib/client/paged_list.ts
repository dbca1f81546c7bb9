/**
 * Follows a paged secret list [ours] from its first page to its last, for
 * the SDK's `iterateSecrets` and `spike secret list`.
 *
 * @module
 */
import type { ListPage, ListQuery } from "./nexus_client.ts";

/**
 * Every path under `prefix`, asking `fetchPage` for pages of `limit` and
 * passing each page's cursor to the next request until a page has none.
 * `fetchPage` is where a caller adds retries.
 */
export async function* pagedSecretPaths(
  fetchPage: (query: ListQuery) => Promise<ListPage>,
  prefix: string,
  limit: number,
): AsyncGenerator<string> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage({ prefix, limit, ...(cursor ? { cursor } : {}) });
    yield* page.keys;
    cursor = page.cursor;
  } while (cursor !== undefined);
}
