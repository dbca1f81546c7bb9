/**
 * What a strict TypeScript user writes against the package: the tests
 * type-check it (never run it) with `tsc --strict` against the built `.d.ts`
 * files. A `@ts-expect-error` line fails the check when the types it guards
 * are loose (e.g. `any`).
 */
import {
  ApiCallError,
  connect,
  type ErrorCode,
  NotFoundError,
  type Policy,
  type PolicySpec,
  type SecretMetadata,
  type SpikeClient,
  UnauthorizedError,
} from "@spike/sdk";

/** Reads the database credentials, following rotations; returns the user. */
export async function readCredentials(env: Record<string, string | undefined>): Promise<string> {
  const spike: SpikeClient = await connect({ env, timeoutMs: 5000, attempts: 2 });
  try {
    const db: Record<string, string> = await spike.getSecret("app/db", { version: 0 });
    const meta: SecretMetadata = await spike.getMetadata("app/db");
    const current: number = meta.metadata.currentVersion;
    const watch = spike.watchSecret("app/db", (values, info) => {
      const version: number = info.version;
      const pass: string | undefined = values.pass;
      void [version, pass];
    }, { intervalMs: 1000, knownVersion: current, onError: (error) => void error });
    await watch.stop();
    const policy: Policy = await spike.getPolicy("web");
    const spec: PolicySpec = { ...policy, permissions: ["read"] };
    await spike.putPolicy(spec);
    const sealed: Uint8Array = await spike.encrypt(new TextEncoder().encode("x"));
    await spike.decrypt(sealed);
    // @ts-expect-error: a policy needs its permissions
    const incomplete: PolicySpec = { name: "x", spiffeIdPattern: "^x$", pathPattern: "^x$" };
    // @ts-expect-error: "admin" is no permission
    await spike.putPolicy({ ...incomplete, permissions: ["admin"] });
    // @ts-expect-error: versions are numbers
    await spike.deleteSecret("app/db", ["1"]);
    return db.user ?? "";
  } catch (error) {
    if (error instanceof NotFoundError || error instanceof UnauthorizedError) {
      const status: number = error.status;
      const code: ErrorCode | undefined = error.code;
      // @ts-expect-error: codes are a closed union
      const wrong: ErrorCode = "not_a_code";
      void [status, code, wrong];
    }
    if (error instanceof ApiCallError && error.retryAfterSeconds !== undefined) {
      const wait: number = error.retryAfterSeconds;
      void wait;
    }
    throw error;
  } finally {
    await spike.close();
  }
}
