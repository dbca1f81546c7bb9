/**
 * Waits for a dev-stack child to answer its plain `GET /health` (or
 * `/ready`) endpoint, failing early if the child exits.
 *
 * @module
 */
import * as https from "node:https";
import { concatBytes } from "../spiffe/pem.ts";
import { DevStackError } from "./errors.ts";
import type { RoleProcess } from "./role_process.ts";

/** Polls `https://127.0.0.1:<port><path>` until 200, the child exits, or the timeout. */
export async function waitForHealth(
  port: number,
  child: RoleProcess,
  timeoutMs: number,
  path = "/health",
): Promise<void> {
  let exited = false;
  child.exited.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (exited) throw new DevStackError(`${child.name} exited during start-up:\n${child.tail()}`);
    try {
      const status = await getPlainStatus(port, path);
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new DevStackError(`${child.name} did not answer ${path} on port ${port} in time (${last}):\n${child.tail()}`);
}

/**
 * One plain GET: the status and the body as text. The operational endpoints
 * need no client certificate and carry no secrets; the server certificate is
 * a dev SVID with no host name, so it is not checked here.
 */
export function getPlain(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      { host: "127.0.0.1", port, path, method: "GET", rejectUnauthorized: false, timeout: 3000 },
      (response) => {
        const chunks: Uint8Array[] = [];
        response.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        response.on(
          "end",
          () => resolve({ status: response.statusCode ?? 0, body: new TextDecoder().decode(concatBytes(chunks)) }),
        );
      },
    );
    request.on("error", reject);
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.end();
  });
}

/** The status of one plain GET (see {@linkcode getPlain}). */
export async function getPlainStatus(port: number, path: string): Promise<number> {
  return (await getPlain(port, path)).status;
}
