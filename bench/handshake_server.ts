/**
 * A `node:tls` server on loopback that completes an mTLS handshake and
 * closes the connection: what the start-up benchmarks connect to when they
 * time a process's first TLS connection. It asks for a client certificate
 * but accepts any (the probes time the handshake, not the checks).
 *
 * @module
 */
import { createServer } from "node:tls";
import { join } from "node:path";

/** A running handshake server. */
export interface HandshakeServer {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** Stops listening. */
  close(): void;
}

/** Starts a handshake server with the SVID files in `svidDir` (spiffe-helper layout). */
export async function startHandshakeServer(svidDir: string): Promise<HandshakeServer> {
  const read = (name: string) => Deno.readTextFileSync(join(svidDir, name));
  const server = createServer({
    key: read("svid_key.pem"),
    cert: read("svid.pem"),
    ca: read("svid_bundle.pem"),
    requestCert: true,
    rejectUnauthorized: false,
  }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}
