import assert from "node:assert/strict";
import { deferredSource } from "./deferred_source.ts";
import type { IdentitySource, X509Identity } from "./identity.ts";
import { IdentitySourceError } from "./identity_check.ts";
import { createStaticSource } from "./static_source.ts";

const IDENTITY: X509Identity = Object.freeze({
  spiffeId: "spiffe://spike.ist/a",
  certChainPem: "chain",
  privateKeyPem: new Uint8Array([1]),
  trustBundlePem: "bundle",
});
const ROTATED: X509Identity = Object.freeze({ ...IDENTITY, certChainPem: "rotated" });

/** A creation step the test finishes by hand. */
function gate() {
  let open!: (source: IdentitySource) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<IdentitySource>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

Deno.test("before the source exists: current() throws not_ready; ready() waits for it", async () => {
  const step = gate();
  const source = deferredSource("test source", () => step.promise);
  assert.throws(() => source.current(), (e) => e instanceof IdentitySourceError && e.reason === "not_ready");
  const ready = source.ready();
  step.open(createStaticSource(IDENTITY));
  assert.equal(await ready, IDENTITY);
  assert.equal(source.current(), IDENTITY);
  await source.close();
});

Deno.test("a listener subscribed early hears rotations; unsubscribing before creation keeps it off", async () => {
  const step = gate();
  const source = deferredSource("test source", () => step.promise);
  const heard: string[] = [];
  source.onChange((id) => heard.push(`kept:${id.certChainPem}`));
  const off = source.onChange((id) => heard.push(`dropped:${id.certChainPem}`));
  off();
  const inner = createStaticSource(IDENTITY);
  step.open(inner);
  await source.ready();
  inner.set(ROTATED);
  assert.deepEqual(heard, ["kept:rotated"]);
  await source.close();
});

Deno.test("close() before creation closes the source once it arrives; ready() then rejects", async () => {
  const step = gate();
  const source = deferredSource("test source", () => step.promise);
  let closedInner = 0;
  const inner = createStaticSource(IDENTITY);
  const closing = source.close();
  const ready = source.ready();
  step.open({ ...inner, close: () => (closedInner++, inner.close()) });
  await closing;
  await source.close();
  assert.equal(closedInner, 1);
  await assert.rejects(ready, (e) => e instanceof IdentitySourceError && e.reason === "closed");
});

Deno.test("a failed creation is what ready() rejects with, and close() still resolves", async () => {
  const step = gate();
  const source = deferredSource("test source", () => step.promise);
  step.fail(new Error("module failed to load"));
  await assert.rejects(source.ready(), /module failed to load/);
  await source.close();
});
