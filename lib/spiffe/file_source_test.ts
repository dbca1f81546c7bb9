import assert from "node:assert/strict";
import { join } from "node:path";
import { createDevCa, writeSvidFiles } from "./dev_ca.ts";
import { createFileSource, loadSvidFiles, SVID_FILE_NAMES } from "./file_source.ts";
import type { X509Identity } from "./identity.ts";
import { IdentitySourceError } from "./identity_check.ts";
import { pemToDerList } from "./pem.ts";
import type { Logger } from "../log/logger.ts";

const TD = "spike.ist";

/** Rejects when `promise` has not settled within `ms` (a hang becomes a failure, not a stuck test). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function nextChange(source: { onChange(l: (i: X509Identity) => void): () => void }): Promise<X509Identity> {
  return new Promise((resolve) => {
    const off = source.onChange((identity) => {
      off();
      resolve(identity);
    });
  });
}

function certDer(identity: X509Identity): Uint8Array[] {
  return pemToDerList(identity.certChainPem, "CERTIFICATE");
}

/** A logger that records warnings and can wait for the next one. */
function spyLogger(): Logger & { nextWarn(): Promise<string> } {
  let waiter: ((m: string) => void) | undefined;
  return {
    debug() {},
    info() {},
    warn(_message, fields) {
      waiter?.(String(fields?.error));
      waiter = undefined;
    },
    error() {},
    nextWarn: () => new Promise((resolve) => waiter = resolve),
  };
}

/** Replaces a file in one step, so the reader sees exactly the bytes a test means. */
async function replaceFile(path: string, data: Uint8Array): Promise<void> {
  await Deno.writeFile(`${path}.tmp`, data);
  await Deno.rename(`${path}.tmp`, path);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spike_file_source_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("file source loads the SVID and hands out key copies", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const svid = await ca.issue(`spiffe://${TD}/workload/a`);
  await withTempDir(async (dir) => {
    await writeSvidFiles(dir, svid);
    const source = createFileSource(dir, { pollIntervalMs: 100 });
    try {
      const identity = await within(source.ready(), 5000, "ready");
      assert.equal(identity.spiffeId, svid.spiffeId);
      assert.deepEqual(certDer(identity), certDer(svid));
      assert.deepEqual(pemToDerList(identity.trustBundlePem), pemToDerList(ca.caCertPem));
      assert.deepEqual(identity.privateKeyPem, svid.privateKeyPem);
      // A holder zeroing its copy must not blank the key for the next caller.
      identity.privateKeyPem.fill(0);
      assert.deepEqual(source.current().privateKeyPem, svid.privateKeyPem);
    } finally {
      await source.close();
      await source.close();
    }
    assert.throws(() => source.current(), (e) => e instanceof IdentitySourceError && e.reason === "closed");
  });
});

for (const watch of [true, false]) {
  Deno.test(`file source picks up replaced files and fires onChange (${watch ? "fs.watch" : "poll only"})`, async () => {
    await checkRotation(watch);
  });
}

async function checkRotation(watch: boolean): Promise<void> {
  const ca = await createDevCa({ trustDomain: TD });
  const first = await ca.issue(`spiffe://${TD}/workload/a`);
  const second = await ca.issue(`spiffe://${TD}/workload/a`);
  await withTempDir(async (dir) => {
    await writeSvidFiles(dir, first);
    // With the watcher on, a poll too slow to matter shows the events alone do the job.
    const source = createFileSource(dir, { pollIntervalMs: watch ? 60_000 : 100, watch });
    try {
      await within(source.ready(), 5000, "ready");
      const changed = nextChange(source);
      await writeSvidFiles(dir, second);
      const rotated = await within(changed, 5000, "onChange");
      assert.deepEqual(certDer(rotated), certDer(second));
      assert.deepEqual(rotated.privateKeyPem, second.privateKeyPem);
      assert.deepEqual(certDer(source.current()), certDer(second));
      assert.notDeepEqual(certDer(first), certDer(second));
    } finally {
      await source.close();
    }
  });
}

Deno.test("file source ignores a key that does not match the certificate, and a half-written PEM", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const first = await ca.issue(`spiffe://${TD}/workload/a`);
  const other = await ca.issue(`spiffe://${TD}/workload/b`);
  const third = await ca.issue(`spiffe://${TD}/workload/c`);
  await withTempDir(async (dir) => {
    await writeSvidFiles(dir, first);
    const log = spyLogger();
    const source = createFileSource(dir, { pollIntervalMs: 100, log });
    const seen: X509Identity[] = [];
    try {
      await within(source.ready(), 5000, "ready");
      source.onChange((identity) => seen.push(identity));

      let warned = log.nextWarn();
      await replaceFile(join(dir, SVID_FILE_NAMES.key), other.privateKeyPem);
      assert.match(await within(warned, 5000, "mismatch warning"), /private key does not match the leaf certificate/);
      assert.equal(source.current().spiffeId, first.spiffeId);
      assert.deepEqual(source.current().privateKeyPem, first.privateKeyPem);

      warned = log.nextWarn();
      const pem = new TextEncoder().encode(third.certChainPem);
      await replaceFile(join(dir, SVID_FILE_NAMES.cert), pem.subarray(0, pem.length - 40));
      assert.match(await within(warned, 5000, "truncated PEM warning"), /svid\.pem is not valid PEM/);
      assert.equal(source.current().spiffeId, first.spiffeId);

      const changed = nextChange(source);
      await writeSvidFiles(dir, third);
      assert.equal((await within(changed, 5000, "onChange")).spiffeId, third.spiffeId);
      assert.deepEqual(seen.map((i) => i.spiffeId), [third.spiffeId]);
    } finally {
      await source.close();
    }
  });
});

Deno.test("file source rejects at once when the directory is missing", async () => {
  const dir = join(await Deno.makeTempDir({ prefix: "spike_file_source_" }), "absent");
  const source = createFileSource(dir, { readyTimeoutMs: 60_000 });
  try {
    await assert.rejects(
      within(source.ready(), 5000, "ready rejection"),
      (e) =>
        e instanceof IdentitySourceError && e.reason === "missing" &&
        e.message === `no SVID in ${dir}: directory missing`,
    );
  } finally {
    await source.close();
    await Deno.remove(join(dir, ".."), { recursive: true });
  }
});

Deno.test("file source names the missing file when ready() times out", async () => {
  await withTempDir(async (dir) => {
    const source = createFileSource(dir, { readyTimeoutMs: 300, pollIntervalMs: 100 });
    try {
      await assert.rejects(
        source.ready(),
        (e) => e instanceof Error && e.message === `no SVID in ${dir}: svid.pem missing`,
      );
    } finally {
      await source.close();
    }
  });
});

Deno.test("file source waits for files that appear after it starts", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const svid = await ca.issue(`spiffe://${TD}/late`);
  await withTempDir(async (dir) => {
    const source = createFileSource(dir, { pollIntervalMs: 100 });
    try {
      const ready = source.ready();
      await writeSvidFiles(dir, svid);
      assert.equal((await within(ready, 5000, "ready")).spiffeId, svid.spiffeId);
    } finally {
      await source.close();
    }
  });
});

Deno.test("loadSvidFiles names each problem", async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const svid = await ca.issue(`spiffe://${TD}/x`);
  const other = await ca.issue(`spiffe://${TD}/y`);
  await withTempDir(async (dir) => {
    await writeSvidFiles(dir, svid);
    await Deno.remove(join(dir, SVID_FILE_NAMES.bundle));
    await assert.rejects(loadSvidFiles(dir), { message: `no SVID in ${dir}: svid_bundle.pem missing` });
    // The files are read together; with several missing, the report still names them in order.
    await Deno.remove(join(dir, SVID_FILE_NAMES.cert));
    await assert.rejects(loadSvidFiles(dir), { message: `no SVID in ${dir}: svid.pem missing` });
    await Deno.remove(join(dir, SVID_FILE_NAMES.key));
    await assert.rejects(loadSvidFiles(dir), { message: `no SVID in ${dir}: svid.pem missing` });
    await writeSvidFiles(dir, svid);
    await Deno.remove(join(dir, SVID_FILE_NAMES.key));
    await assert.rejects(loadSvidFiles(dir), { message: `no SVID in ${dir}: svid_key.pem missing` });
    await writeSvidFiles(dir, svid);
    await Deno.writeFile(join(dir, SVID_FILE_NAMES.key), other.privateKeyPem);
    await assert.rejects(
      loadSvidFiles(dir),
      (e) => e instanceof IdentitySourceError && e.reason === "invalid_svid" && /does not match/.test(e.message),
    );
    await Deno.writeTextFile(join(dir, SVID_FILE_NAMES.key), svid.certChainPem);
    await assert.rejects(loadSvidFiles(dir), /svid_key\.pem holds 0 PKCS#8 PRIVATE KEY blocks/);
    await writeSvidFiles(dir, svid);
    assert.equal((await loadSvidFiles(dir)).spiffeId, svid.spiffeId);
  });
});
