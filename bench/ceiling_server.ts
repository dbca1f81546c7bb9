/**
 * The "ceiling" of the side-by-side benchmark: a trivial Hono handler for
 * the secret API's two requests (`get` answers a fixed secret, a write
 * answers `{}`), served by the same mTLS server as Nexus
 * (`lib/spiffe/mtls_server.ts`, `serveHono`). Whatever Nexus adds on top of
 * this — authorization, the store, crypto, the audit trail — is what its
 * own code costs; this server's numbers are the most the HTTP/TLS stack
 * gives.
 *
 * With `--direct` the same two answers come from a handler on `node:http`'s
 * request and response directly (`createMtlsServer` and
 * `lib/spiffe/node_exchange.ts`, as Nexus serves its API): no Fetch
 * `Request`/`Response`, no Hono. The difference between the two is what the
 * bridge and the framework cost.
 *
 * Run (as bench/side_by_side_bench.ts does):
 * `deno run --allow-all bench/ceiling_server.ts <svid-dir> <port> [--direct]`;
 * prints `listening <port>` once it serves.
 *
 * @module
 */
import { Hono } from "hono";
import { createFileSource } from "../lib/spiffe/file_source.ts";
import { createMtlsServer, type MtlsEnv, type MtlsHandler, serveHono } from "../lib/spiffe/mtls_server.ts";
import { DISCARD_MIN_BYTES, readBody, sendJson } from "../lib/spiffe/node_exchange.ts";

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

/** The same answers from `node:http` directly (what Nexus's API handler builds on). */
export function ceilingHandler(): MtlsHandler {
  const limit = 1 << 20;
  return async (req, res, peer) => {
    if (!peer.ok) return sendJson(req, res, DISCARD_MIN_BYTES, 401, { err: "access_unauthorized" });
    // Read and parse the body as Nexus does, so the comparison stays fair.
    const body = JSON.parse(new TextDecoder().decode(await readBody(req, limit)));
    if (typeof body?.path !== "string") return sendJson(req, res, limit, 400, { err: "api_bad_request" });
    const get = (req.url ?? "").endsWith("?action=get");
    sendJson(req, res, limit, 200, get ? { data: CEILING_SECRET } : {});
  };
}

async function main(): Promise<void> {
  const [svidDir, portText] = Deno.args;
  if (!svidDir || !portText) throw new Error("usage: ceiling_server.ts <svid-dir> <port> [--direct]");
  const identity = createFileSource(svidDir);
  await identity.ready();
  const server = Deno.args.includes("--direct")
    ? await createMtlsServer({ identity, handler: ceilingHandler() })
    : await serveHono(ceilingApp(), { identity, maxBodyBytes: 1 << 20 });
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
