/**
 * The SDK's retry rules on Node: a Nexus without its root key answers 503.
 * With retries off the call rejects with `NotReadyError`; with retries on it
 * backs off until the key is restored (the test does that once this script
 * prints `waiting for Nexus`), then resolves. Run by
 * `tests/sdk_package_test.ts` with the Pilot superuser's SVID files.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { connect, NotReadyError } from "@spike/sdk";

const impatient = await connect({ env: process.env, attempts: 1 });
try {
  await assert.rejects(impatient.listSecrets(), (error) => {
    assert.ok(error instanceof NotReadyError, `expected NotReadyError, got ${error}`);
    assert.equal(error.status, 503);
    assert.equal(error.code, "state_not_ready");
    return true;
  });
} finally {
  await impatient.close();
}

const patient = await connect({ env: process.env, attempts: 10 });
try {
  console.log("waiting for Nexus");
  const paths = await patient.listSecrets();
  console.log(`Nexus ready: ${paths.length} secrets`);
} finally {
  await patient.close();
}
