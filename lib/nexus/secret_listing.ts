/**
 * One page of a scoped secret listing [ours]: the paths under a prefix
 * that a caller may see, in byte order, from a cursor on. The store's
 * sorted paths are read in chunks and filtered as they go, so a page costs
 * at most `scanBudget` rows however many paths exist, and nothing ever
 * holds the whole list.
 *
 * Which rows are read at all comes from the caller's scope: when every
 * policy that can grant the caller anything has a literal path prefix, only
 * those prefixes' ranges of the index are scanned (a workload granted
 * `apps/billing/` never reads the million paths elsewhere); otherwise the
 * whole range under the requested prefix is, with the policies' path
 * patterns tested on each path.
 *
 * @module
 */
import { compareByteOrder, prefixUpperBound } from "../store/byte_order.ts";
import type { Store } from "../store/types.ts";
import type { PathScope } from "./compiled_policy_set.ts";

/** What a page asks for. */
export interface PageRequest {
  /** Only paths starting with this (`""`: all). */
  readonly prefix: string;
  /** Only paths after this one (the previous page's cursor; absent: from the start). */
  readonly after?: string;
  /** Most paths returned. */
  readonly limit: number;
}

/** One page: the paths, and where the next page starts (absent: this was the last). */
export interface Page {
  /** Granted paths, in byte order. */
  readonly keys: string[];
  /** The last path examined, when more may follow; the next page starts after it. */
  readonly next?: string;
}

/** Every path: the scope of the superuser and of holders of `list` on `spike/system/secret`. */
export const ALL_PATHS: PathScope = { prefixes: undefined, test: () => true };

/**
 * The disjoint key ranges (as prefixes) to scan, in order: the requested
 * prefix narrowed by the scope's prefixes. A scope prefix that extends
 * another adds nothing, so only the shortest of each family is kept.
 */
export function scanPrefixes(prefix: string, scope: PathScope): string[] {
  if (scope.prefixes === undefined) return [prefix];
  const narrowed = new Set<string>();
  for (const p of scope.prefixes) {
    if (p.startsWith(prefix)) narrowed.add(p);
    else if (prefix.startsWith(p)) narrowed.add(prefix);
  }
  const sorted = [...narrowed].sort(compareByteOrder);
  const out: string[] = [];
  for (const p of sorted) if (!out.some((kept) => p.startsWith(kept))) out.push(p);
  return out;
}

/**
 * Reads one page. At most `scanBudget` stored paths are examined; when the
 * budget runs out first, the page holds what was granted so far (possibly
 * nothing) and `next` says where to go on.
 */
export async function listPage(
  store: Store,
  scope: PathScope,
  request: PageRequest,
  scanBudget: number,
): Promise<Page> {
  const keys: string[] = [];
  let examined = 0;
  let last = request.after;
  for (const prefix of scanPrefixes(request.prefix, scope)) {
    const upper = prefixUpperBound(prefix);
    // A range that ends at or before the cursor was read by earlier pages.
    if (last !== undefined && upper !== undefined && compareByteOrder(upper, last) <= 0) continue;
    while (true) {
      if (examined >= scanBudget) return { keys, next: last! };
      const chunk = Math.min(scanBudget - examined, Math.max(request.limit - keys.length, 100));
      const paths = await store.listSecretPathsPage({
        prefix,
        ...(last === undefined ? {} : { after: last }),
        limit: chunk,
      });
      for (const path of paths) {
        examined++;
        last = path;
        if (scope.test(path)) keys.push(path);
        if (keys.length === request.limit) return { keys, next: path };
      }
      if (paths.length < chunk) break;
    }
  }
  return { keys };
}
