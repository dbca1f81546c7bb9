/**
 * Child process of `bench/bridge_bench.ts`: serves a three-route Hono app
 * through the mTLS server and node→fetch bridge of the checkout at `root`,
 * so two checkouts' bridges can be measured side by side.
 *
 * Run (by the bench): `deno run --allow-all --config <root>/deno.json
 * bench/bridge_server.ts <root> <port> <svid dir>`; prints `listening` once
 * it accepts connections.
 *
 * @module
 */
import { Hono } from "hono";

const [root, portText, svidDir] = Deno.args;
if (!root || !portText || !svidDir) throw new Error("usage: bridge_server.ts <root> <port> <svid dir>");

const { serveHono } = await import(`${root}/lib/spiffe/mtls_server.ts`);
const { createStaticSource } = await import(`${root}/lib/spiffe/static_source.ts`);
const { readBodyCapped } = await import(`${root}/lib/api/body.ts`);

type Env = { Bindings: { peer: { ok: boolean } } };
const app = new Hono<Env>();
app.get("/health", (c) => c.json({ status: "ok" }));
// A body the app reads whole, as every API route does.
app.post("/echo", async (c) => {
  if (!c.env.peer.ok) return c.json({ err: "access_unauthorized" }, 401);
  const body: Uint8Array = await readBodyCapped(c.req.raw, 64 * 1024);
  return c.json({ bytes: body.length });
});
// A body the app never reads: a request refused before its body matters.
app.post("/refuse", (c) => c.json({ err: "access_unauthorized" }, 401));

const identity = {
  spiffeId: "spiffe://spike.ist/spike/nexus",
  certChainPem: await Deno.readTextFile(`${svidDir}/svid.pem`),
  privateKeyPem: await Deno.readFile(`${svidDir}/svid_key.pem`),
  trustBundlePem: await Deno.readTextFile(`${svidDir}/svid_bundle.pem`),
};
const server = await serveHono(app, { identity: createStaticSource(identity), maxBodyBytes: 1024 * 1024 });
await server.listen(Number(portText), "127.0.0.1");
console.log("listening");
