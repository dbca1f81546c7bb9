import assert from "node:assert/strict";
import fc from "fast-check";
import { requestUrl, targetParts } from "./node_exchange.ts";

/**
 * What a router behind the Fetch bridge saw (the bridge's `new URL`, then
 * Hono's path decoding): the reference the hand-cut fast path must match.
 */
function throughUrl(target: string, name: string): { path: string; param: string } | undefined {
  let url: URL;
  try {
    url = requestUrl(target);
  } catch {
    return undefined;
  }
  const keepPercent = (text: string) => decodeURI(text.includes("%25") ? text.replace(/%25/g, "%2525") : text);
  let path = url.pathname;
  if (path.includes("%")) {
    try {
      path = keepPercent(path);
    } catch {
      path = path.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
        try {
          return keepPercent(run);
        } catch {
          return run;
        }
      });
    }
  }
  return { path, param: url.searchParams.get(name) ?? "" };
}

Deno.test("targetParts cuts plain targets by hand", () => {
  assert.deepEqual(targetParts("/v1/store/secrets?action=get", "action"), {
    path: "/v1/store/secrets",
    param: "get",
  });
  assert.deepEqual(targetParts("/v1/store/secrets", "action"), { path: "/v1/store/secrets", param: "" });
  assert.deepEqual(targetParts("/v1/x?a=1&action=list&action=get", "action"), { path: "/v1/x", param: "list" });
  assert.deepEqual(targetParts("/v1/x?action", "action"), { path: "/v1/x", param: "" });
  assert.deepEqual(targetParts("/", "action"), { path: "/", param: "" });
});

Deno.test("targetParts normalizes like URL: dot segments, escapes, authority form, absolute form", () => {
  assert.deepEqual(targetParts("/v1/store/../store/secrets?action=get", "action"), {
    path: "/v1/store/secrets",
    param: "get",
  });
  assert.deepEqual(targetParts("/v1/store/%73ecrets?action=g%65t", "action"), {
    path: "/v1/store/secrets",
    param: "get",
  });
  assert.deepEqual(targetParts("/a%2Fb?action=a+b", "action"), { path: "/a%2Fb", param: "a b" });
  assert.deepEqual(targetParts("example.com:443", "action"), { path: "/example.com:443", param: "" });
  assert.deepEqual(targetParts("https://host/v1/x?action=get", "action"), { path: "/v1/x", param: "get" });
  assert.deepEqual(targetParts("*", "action"), { path: "/*", param: "" });
});

Deno.test("targetParts agrees with the URL parser for any target", () => {
  const alphabet = fc.constantFrom(..."/.?&=%+aA0-_~:@!$'()*,;#[]\\ \u00e9%2F%41%25%zz".split(""), "..", "/./", "%2e");
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 30 }), fc.boolean(), (parts, slash) => {
      const target = (slash ? "/" : "") + parts.join("");
      if (target === "") return;
      assert.deepEqual(targetParts(target, "action"), throughUrl(target, "action"), JSON.stringify(target));
      // Routes are plain paths; make sure the fast path sees those often.
      const plain = `/v1/${parts.filter((p) => /^[a-z0-9]$/i.test(p)).join("")}?action=get`;
      assert.deepEqual(targetParts(plain, "action"), throughUrl(plain, "action"), plain);
    }),
    { numRuns: 3000 },
  );
});
