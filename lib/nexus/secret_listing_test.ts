/**
 * Pages of a scoped listing over a real store: ranges narrowed by the
 * scope's prefixes, filtering as it goes, the cursor, and the scan budget
 * that bounds one page's work.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createMemoryStore } from "../store/memory_store.ts";
import { recordOf } from "../store/store_contract.ts";
import type { Store } from "../store/types.ts";
import type { PathScope } from "./compiled_policy_set.ts";
import { ALL_PATHS, listPage, type Page, scanPrefixes } from "./secret_listing.ts";

const sealed = new Uint8Array([1]);
const record = recordOf([{ version: 1, createdTime: new Date(0), deletedTime: null, sealed, keyVersion: 1 }]);

async function storeWith(paths: readonly string[]): Promise<Store> {
  const store = createMemoryStore();
  for (const path of paths) assert.ok(await store.writeSecret(path, 0, record));
  return store;
}

/** A store that counts the rows it hands out. */
function counting(store: Store): Store & { rows: number } {
  const wrapped = Object.create(store) as Store & { rows: number };
  wrapped.rows = 0;
  wrapped.listSecretPathsPage = async (query) => {
    const rows = await store.listSecretPathsPage(query);
    wrapped.rows += rows.length;
    return rows;
  };
  return wrapped;
}

/** Every page from the start, following `next`. */
async function walk(store: Store, scope: PathScope, prefix: string, limit: number, budget: number): Promise<Page[]> {
  const pages: Page[] = [];
  let after: string | undefined;
  do {
    const page = await listPage(store, scope, { prefix, ...(after === undefined ? {} : { after }), limit }, budget);
    pages.push(page);
    after = page.next;
  } while (after !== undefined && pages.length < 10_000);
  return pages;
}

Deno.test("scanPrefixes: the requested prefix narrowed by the scope's, shortest of each family, in order", () => {
  const scope = (prefixes: string[] | undefined): PathScope => ({ prefixes, test: () => true });
  assert.deepEqual(scanPrefixes("", scope(undefined)), [""]);
  assert.deepEqual(scanPrefixes("apps/", scope(undefined)), ["apps/"]);
  assert.deepEqual(scanPrefixes("", scope(["b/", "a/x", "a/", "c"])), ["a/", "b/", "c"]);
  assert.deepEqual(scanPrefixes("apps/", scope(["apps/b/", "apps/a/", "other/"])), ["apps/a/", "apps/b/"]);
  assert.deepEqual(scanPrefixes("apps/a/db", scope(["apps/", "x"])), ["apps/a/db"]);
  assert.deepEqual(scanPrefixes("apps/", scope([])), []);
});

Deno.test("listPage: every granted path exactly once, in order, for any page size and budget", async () => {
  const paths = Array.from({ length: 300 }, (_, i) => `${["a", "b", "c"][i % 3]}/${String(i).padStart(4, "0")}`);
  const store = await storeWith(paths);
  const sorted = await store.listSecretPaths();
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 120 }),
      fc.integer({ min: 1, max: 400 }),
      fc.constantFrom("", "a/", "b/00", "c/0299", "nope"),
      fc.constantFrom<string[] | undefined>(undefined, ["a/"], ["b/", "c/01"], []),
      async (limit, budget, prefix, prefixes) => {
        const scope: PathScope = {
          prefixes,
          test: (p) => (prefixes === undefined || prefixes.some((x) => p.startsWith(x))) && !p.endsWith("7"),
        };
        const pages = await walk(store, scope, prefix, limit, budget);
        const got = pages.flatMap((p) => p.keys);
        const expected = sorted.filter((p) => p.startsWith(prefix) && scope.test(p));
        assert.deepEqual(got, expected);
        for (const page of pages) assert.ok(page.keys.length <= limit);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("listPage: a page examines at most the budget; a narrow scope reads only its ranges", async () => {
  const paths = [
    ...Array.from({ length: 5000 }, (_, i) => `noise/${String(i).padStart(5, "0")}`),
    ...Array.from({ length: 30 }, (_, i) => `apps/billing/${String(i).padStart(2, "0")}`),
  ];
  const store = counting(await storeWith(paths));
  // Unconstrained scope that grants almost nothing: budget-bound pages, some empty, each with a cursor.
  const rare: PathScope = { prefixes: undefined, test: (p) => p.endsWith("4999") };
  store.rows = 0;
  const first = await listPage(store, rare, { prefix: "", limit: 10 }, 1000);
  assert.deepEqual(first.keys, []);
  assert.ok(first.next !== undefined, "more may follow");
  assert.ok(store.rows <= 1000, `examined ${store.rows}`);
  const pages = await walk(store, rare, "", 10, 1000);
  assert.deepEqual(pages.flatMap((p) => p.keys), ["noise/04999"]);
  assert.equal(pages.length, 6, "5,030 rows in pages of at most 1,000");
  // A scope with a literal prefix reads only that range.
  const billing: PathScope = { prefixes: ["apps/billing/"], test: (p) => p.startsWith("apps/billing/") };
  store.rows = 0;
  const all = await listPage(store, billing, { prefix: "", limit: 100 }, 1000);
  assert.equal(all.keys.length, 30);
  assert.equal(all.next, undefined);
  assert.equal(store.rows, 30, "not one noise row read");
  // ALL_PATHS with a prefix: that range only.
  store.rows = 0;
  const page = await listPage(store, ALL_PATHS, { prefix: "apps/", limit: 5 }, 1000);
  assert.deepEqual(page.keys, paths.slice(5000, 5005));
  assert.equal(page.next, "apps/billing/04");
  assert.ok(store.rows <= 100);
});
