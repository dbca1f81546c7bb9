/**
 * The put guard for our write extensions, at the transport boundary: a
 * Nexus that is not ours (SPIKE's answers `GET /health` with 400) never
 * gets a put carrying `cas` or an expiry. tests/spike_interop_test.ts runs
 * it against SPIKE's real Nexus; the kv tests against ours.
 */
import assert from "node:assert/strict";
import { BadRequestError, UnsupportedExtensionError } from "./errors.ts";
import { NexusClient } from "./nexus_client.ts";
import type { Transport, TransportResponse } from "./transport.ts";

const BASE = "https://nexus.test:8553";

/** A transport answering `GET /health` with `health` (or failing once with `failFirst`) and every POST with `{}`. */
function transport(
  health: number | undefined,
  options: { failFirst?: boolean } = {},
): Transport & { posts: Array<{ url: string; body: unknown }>; gets: string[] } {
  const posts: Array<{ url: string; body: unknown }> = [];
  const gets: string[] = [];
  let failures = options.failFirst ? 1 : 0;
  const answer = (status: number, body: unknown): TransportResponse => ({
    status,
    headers: { "content-type": "application/json" },
    body: new TextEncoder().encode(JSON.stringify(body)),
  });
  const out: Transport & { posts: typeof posts; gets: string[] } = {
    posts,
    gets,
    post(url, body) {
      posts.push({ url, body: JSON.parse(String(body)) });
      return Promise.resolve(answer(200, {}));
    },
  };
  if (health !== undefined) {
    out.request = (method, url) => {
      gets.push(`${method} ${url}`);
      if (failures-- > 0) return Promise.reject(new Error("connection refused"));
      return Promise.resolve(
        health === 200 ? answer(200, { status: "ok" }) : answer(health, { err: "api_bad_request" }),
      );
    };
  }
  return out;
}

Deno.test("put with cas or an expiry is not sent to a Nexus that is not ours; a plain put is, unasked", async () => {
  const spike = transport(400);
  const nexus = new NexusClient(BASE, spike);
  await nexus.putSecret("app/db", { k: "v" });
  assert.deepEqual(spike.gets, [], "SPIKE's own put needs no question");
  for (const options of [{ cas: 1 }, { ttl: "1h" }, { expiresAt: "2030-01-01T00:00:00Z" }, { versionTtl: 60 }]) {
    await assert.rejects(
      nexus.putSecret("app/db", { k: "w" }, options),
      (error: unknown) =>
        error instanceof UnsupportedExtensionError && error instanceof BadRequestError && error.status === 400 &&
        /does not support check-and-set \(cas\) and expiry on put: it answered GET \/health with 400/.test(
          error.message,
        ) && /nothing was written/.test(error.message),
      JSON.stringify(options),
    );
  }
  assert.equal(spike.posts.length, 1, "only the plain put went out");
  assert.deepEqual(spike.gets, [`GET ${BASE}/health`], "asked once");
});

Deno.test("put with cas or an expiry goes to our Nexus with its fields, after one question", async () => {
  const ours = transport(200);
  const nexus = new NexusClient(BASE, ours);
  await nexus.putSecret("app/db", { k: "v" }, { cas: 0 });
  await nexus.putSecret("app/db", { k: "w" }, { cas: 1, ttl: "1h" });
  assert.deepEqual(ours.posts.map((p) => p.body), [
    { cas: 0, path: "app/db", values: { k: "v" } },
    { cas: 1, ttl: "1h", path: "app/db", values: { k: "w" } },
  ]);
  assert.equal(ours.gets.length, 1);
});

Deno.test("a question that fails is asked again by the next put; a transport without GET is trusted", async () => {
  const flaky = transport(200, { failFirst: true });
  const nexus = new NexusClient(BASE, flaky);
  await assert.rejects(nexus.putSecret("app/db", { k: "v" }, { cas: 0 }), /connection refused/);
  assert.equal(flaky.posts.length, 0);
  await nexus.putSecret("app/db", { k: "v" }, { cas: 0 });
  assert.equal(flaky.gets.length, 2);
  assert.equal(flaky.posts.length, 1);

  const postOnly = transport(undefined);
  await new NexusClient(BASE, postOnly).putSecret("app/db", { k: "v" }, { cas: 0 });
  assert.deepEqual(postOnly.posts.map((p) => p.body), [{ cas: 0, path: "app/db", values: { k: "v" } }]);
});
