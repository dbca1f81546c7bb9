import assert from "node:assert/strict";
import type { X509Identity } from "./identity.ts";
import { IdentitySourceError } from "./identity_check.ts";
import { createIdentityState, type IdentityStateOptions } from "./identity_state.ts";
import { type Logger, silentLogger } from "../log/logger.ts";

/** The state never parses PEM, so plain strings stand in for certificates here. */
function fake(n: number): X509Identity {
  return {
    spiffeId: `spiffe://td/${n}`,
    certChainPem: `cert ${n}`,
    privateKeyPem: new Uint8Array([n, n, n]),
    trustBundlePem: "bundle",
  };
}

function options(overrides: Partial<IdentityStateOptions> = {}): IdentityStateOptions {
  return {
    readyTimeoutMs: 60_000,
    timeoutError: () => new IdentitySourceError("timeout", "too slow"),
    log: silentLogger,
    name: "test",
    ...overrides,
  };
}

Deno.test("identity state: ready, rotations, duplicates and key copies", async () => {
  const state = createIdentityState(options());
  const seen: string[] = [];
  state.onChange((i) => seen.push(i.certChainPem));
  assert.throws(() => state.current(), (e) => e instanceof IdentitySourceError && e.reason === "not_ready");
  const ready = state.ready();

  const first = fake(1);
  assert.equal(state.publish(first), true);
  assert.equal((await ready).certChainPem, "cert 1");
  assert.equal(state.publish(fake(1)), false, "an identical identity is not a rotation");
  assert.equal(state.publish(fake(2)), true);
  assert.deepEqual(seen, ["cert 2"]);
  // The replaced identity's key was ours to wipe.
  assert.deepEqual(first.privateKeyPem, new Uint8Array(3));

  const handed = state.current();
  handed.privateKeyPem.fill(0);
  assert.deepEqual(state.current().privateKeyPem, new Uint8Array([2, 2, 2]));
  assert.equal((await state.ready()).certChainPem, "cert 2", "ready() gives the latest identity");
  state.close();
  state.close();
});

Deno.test("identity state: a throwing listener neither stops the others nor the source", () => {
  const errors: string[] = [];
  const log: Logger = { ...silentLogger, error: (_m, f) => errors.push(String(f?.error)) };
  const state = createIdentityState(options({ log }));
  const seen: number[] = [];
  state.onChange(() => {
    throw new Error("listener broke");
  });
  const off = state.onChange(() => seen.push(1));
  state.onChange(() => seen.push(2));
  state.publish(fake(1));
  state.publish(fake(2));
  off();
  state.publish(fake(3));
  assert.deepEqual(seen, [1, 2, 2]);
  assert.deepEqual(errors, ["listener broke", "listener broke"]);
  state.close();
});

Deno.test("identity state: ready() rejects on timeout, fail() and close()", async () => {
  const timed = createIdentityState(options({ readyTimeoutMs: 10 }));
  await assert.rejects(timed.ready(), { message: "too slow" });
  timed.publish(fake(1));
  assert.equal((await timed.ready()).spiffeId, "spiffe://td/1", "a late identity still serves");
  timed.close();

  const failed = createIdentityState(options());
  failed.fail(new IdentitySourceError("missing", "gone"));
  await assert.rejects(failed.ready(), { message: "gone" });
  failed.close();

  const closed = createIdentityState(options());
  const pending = closed.ready();
  closed.close();
  await assert.rejects(pending, (e) => e instanceof IdentitySourceError && e.reason === "closed");
  assert.equal(closed.publish(fake(1)), false);
  assert.throws(() => closed.current(), (e) => e instanceof IdentitySourceError && e.reason === "closed");
});
