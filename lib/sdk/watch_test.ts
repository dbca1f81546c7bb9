/**
 * The watch loop against a scripted reader (the real-Nexus test is in
 * mod_test.ts and tests/sdk_package_test.ts): what is delivered when, and
 * that no failure escapes it.
 */
import assert from "node:assert/strict";
import { NotFoundError, UnauthorizedError } from "../client/errors.ts";
import type { SecretMetadata } from "../client/nexus_client.ts";
import { pollDelay, type SecretReader, watchSecret } from "./watch.ts";

/** A reader whose current version and failures the test sets; counts metadata polls. */
function scriptedReader() {
  const state = { current: 0, fail: undefined as unknown, polls: 0, reads: [] as number[] };
  const reader: SecretReader = {
    getMetadata(path) {
      state.polls++;
      if (state.fail !== undefined) return Promise.reject(state.fail);
      return Promise.resolve(
        { metadata: { currentVersion: state.current }, versions: {}, path } as unknown as SecretMetadata,
      );
    },
    getSecret(_path, { version }) {
      state.reads.push(version);
      return Promise.resolve({ v: String(version) });
    },
  };
  return { state, reader };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("watch: current version first, then each change (also a move back after a delete)", async () => {
  const { state, reader } = scriptedReader();
  state.current = 1;
  const seen: string[] = [];
  const watch = watchSecret(reader, "app/x", (values, info) => void seen.push(`${info.version}:${values.v}`), {
    intervalMs: 5,
    onError: (e) => assert.fail(`unexpected ${e}`),
  });
  try {
    await until(() => seen.length === 1, "the first delivery");
    state.current = 3;
    await until(() => seen.length === 2, "version 3");
    state.current = 2;
    await until(() => seen.length === 3, "the move back to 2");
    const polls = state.polls;
    await until(() => state.polls > polls + 3, "more polls");
    assert.deepEqual(seen, ["1:1", "3:3", "2:2"], "an unchanged version is not delivered again");
    assert.deepEqual(state.reads, [1, 3, 2], "values are read only on a change, by version");
  } finally {
    await watch.stop();
  }
});

Deno.test("watch: knownVersion skips what the caller has; every version deleted is reported as NotFoundError", async () => {
  const { state, reader } = scriptedReader();
  state.current = 4;
  const seen: number[] = [];
  const errors: unknown[] = [];
  const watch = watchSecret(reader, "app/x", (_v, info) => void seen.push(info.version), {
    intervalMs: 5,
    maxBackoffMs: 10,
    knownVersion: 4,
    onError: (e) => errors.push(e),
  });
  try {
    await until(() => state.polls >= 3, "three polls");
    assert.deepEqual(seen, []);
    state.current = 0;
    await until(() => errors.length > 0, "the deleted secret reported");
    assert.ok(errors[0] instanceof NotFoundError);
    state.current = 4;
    const polls = state.polls;
    await until(() => state.polls > polls + 2, "polls after the undelete");
    assert.deepEqual(seen, [], "back to the version the caller has: nothing new");
  } finally {
    await watch.stop();
  }
});

Deno.test("watch: failures reach onError and polling goes on; throwing handlers and error handlers do not escape", async () => {
  const { state, reader } = scriptedReader();
  state.fail = new UnauthorizedError(401, "access_unauthorized");
  const errors: unknown[] = [];
  let handlerCalls = 0;
  const watch = watchSecret(reader, "app/x", () => {
    handlerCalls++;
    throw new Error("handler broke");
  }, {
    intervalMs: 2,
    maxBackoffMs: 4,
    onError: (e) => {
      errors.push(e);
      throw new Error("so did the error handler");
    },
  });
  try {
    await until(() => errors.length >= 2, "two failed polls");
    assert.ok(errors.every((e) => e instanceof UnauthorizedError));
    state.fail = undefined;
    state.current = 1;
    await until(() => handlerCalls === 1, "delivery after recovery");
    await until(() => errors.some((e) => e instanceof Error && e.message === "handler broke"), "handler error");
    state.current = 2;
    await until(() => handlerCalls === 2, "the next version still delivered");
  } finally {
    await watch.stop();
  }
});

Deno.test("watch: stop() waits for a handler in progress and ends polling; bad intervals are refused", async () => {
  const { state, reader } = scriptedReader();
  state.current = 1;
  let release!: () => void;
  let finished = false;
  const started = Promise.withResolvers<void>();
  const watch = watchSecret(reader, "app/x", async () => {
    started.resolve();
    await new Promise<void>((resolve) => release = resolve);
    finished = true;
  }, { intervalMs: 1 });
  await started.promise;
  const stopping = watch.stop();
  release();
  await stopping;
  assert.ok(finished, "stop() resolved after the handler finished");
  const polls = state.polls;
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(state.polls, polls, "no poll after stop()");
  await watch.stop();

  assert.throws(() => watchSecret(reader, "p", () => {}, { intervalMs: 0 }), RangeError);
  assert.throws(() => watchSecret(reader, "p", () => {}, { maxBackoffMs: Number.NaN }), RangeError);
});

Deno.test("watch: the wait doubles per failure from the interval up to the cap", () => {
  assert.equal(pollDelay(0, 1000, 60_000), 1000);
  assert.deepEqual([1, 2, 3, 6, 7].map((n) => pollDelay(n, 1000, 60_000)), [2000, 4000, 8000, 60_000, 60_000]);
  assert.equal(pollDelay(3, 120_000, 60_000), 120_000, "never shorter than the interval");
  assert.equal(pollDelay(5000, 1000, 60_000), 60_000, "no overflow after many failures");
});
