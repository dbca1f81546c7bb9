/**
 * The "ceiling" of the side-by-side benchmark: a trivial Hono handler for
 * the secret API's two requests (`get` answers a fixed secret, a write
 * answers `{}`), served by the same mTLS server as Nexus
 * (`lib/spiffe/mtls_server.ts`, `serveHono`). Whatever Nexus adds on top of
 * this — authorization, the store, crypto, the audit trail — is what its
 * own code costs; this server's numbers are the most the HTTP/TLS stack
 * gives.
 *
 * Run (as bench/side_by_side_bench.ts does):
 * `deno run --allow-all bench/ceiling_server.ts <svid-dir> <port>`; prints
 * `listening <port>` once it serves.
 *
 * @module
 */
import { Hono } from "hono";
import { createFileSource } from "../lib/spiffe/file_source.ts";
import { type MtlsEnv, serveHono } from "../lib/spiffe/mtls_server.ts";

/** The fixed secret the ceiling answers, shaped like Nexus's answer. */
export const CEILING_SECRET = Object.freeze({ username: "bench", password: "correct-horse-battery-staple" });

/** The app: the same routes and body reads as Nexus's secret get and put, nothing else. */
export function ceilingApp(): Hono<{ Bindings: MtlsEnv }> {
  const app = new Hono<{ Bindings: MtlsEnv }>();
  app.post("/v1/store/secrets", async (c) => {
    if (!c.env.peer.ok) return c.json({ err: "access_unauthorized" }, 401);
    // Read and parse the body as Nexus does, so the comparison stays fair.
    const body = await c.req.json();
    if (typeof body?.path !== "string") return c.json({ err: "api_bad_request" }, 400);
    if (c.req.query("action") === "get") return c.json({ data: CEILING_SECRET });
    return c.json({});
  });
  return app;
}

async function main(): Promise<void> {
  const [svidDir, portText] = Deno.args;
  if (!svidDir || !portText) throw new Error("usage: ceiling_server.ts <svid-dir> <port>");
  const identity = createFileSource(svidDir);
  await identity.ready();
  const server = await serveHono(ceilingApp(), { identity, maxBodyBytes: 1 << 20 });
  const port = await server.listen(Number(portText), "127.0.0.1");
  console.log(`listening ${port}`);
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGTERM", resolve);
    Deno.addSignalListener("SIGINT", resolve);
  });
  await server.close();
  await identity.close();
}

if (import.meta.main) {
  await main();
}
