import assert from "node:assert/strict";
import { createStaticSource } from "./static_source.ts";
import type { X509Identity } from "./identity.ts";

function fake(id: string): X509Identity {
  return { spiffeId: id, certChainPem: "", privateKeyPem: new Uint8Array(), trustBundlePem: "" };
}

Deno.test("ready and current return the identity; set replaces it and notifies", async () => {
  const a = fake("spiffe://spike.ist/a");
  const b = fake("spiffe://spike.ist/b");
  const source = createStaticSource(a);
  assert.equal(await source.ready(), a);
  assert.equal(source.current(), a);
  const seen: string[] = [];
  const off = source.onChange((id) => seen.push(id.spiffeId));
  source.set(b);
  assert.equal(source.current(), b);
  assert.equal(await source.ready(), b);
  off();
  source.set(a);
  assert.deepEqual(seen, ["spiffe://spike.ist/b"]);
});

Deno.test("a throwing listener does not stop the others", () => {
  const source = createStaticSource(fake("spiffe://spike.ist/a"));
  const seen: string[] = [];
  source.onChange(() => {
    throw new Error("boom");
  });
  source.onChange((id) => seen.push(id.spiffeId));
  assert.throws(() => source.set(fake("spiffe://spike.ist/b")), AggregateError);
  assert.deepEqual(seen, ["spiffe://spike.ist/b"]);
});

Deno.test("the same listener subscribed twice is two subscriptions", () => {
  const source = createStaticSource(fake("spiffe://spike.ist/a"));
  let calls = 0;
  const listener = () => calls++;
  const off1 = source.onChange(listener);
  source.onChange(listener);
  off1();
  source.set(fake("spiffe://spike.ist/b"));
  assert.equal(calls, 1);
});

Deno.test("close drops listeners, refuses set, and is idempotent", async () => {
  const source = createStaticSource(fake("spiffe://spike.ist/a"));
  let calls = 0;
  source.onChange(() => calls++);
  await source.close();
  await source.close();
  assert.throws(() => source.set(fake("spiffe://spike.ist/b")), /closed/);
  source.onChange(() => calls++)();
  assert.equal(calls, 0);
  assert.equal(source.current().spiffeId, "spiffe://spike.ist/a");
});
