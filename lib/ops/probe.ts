/**
 * Plain GETs to the operational endpoints of Nexus and the Keepers
 * (`/ready`, `/health`), for `spike status`. Those endpoints need no client
 * certificate, but the answer is only worth trusting from the right server:
 * with an identity at hand, the server's SVID chain is checked against the
 * trust bundle and its SPIFFE ID against the role it should have (the same
 * mTLS client every other CLI call uses). Without one, the caller may ask
 * for an unverified probe explicitly.
 *
 * @module
 */
import https from "node:https";
import { MtlsError } from "../spiffe/errors.ts";
import type { IdentitySource } from "../spiffe/identity.ts";
import { createMtlsClient, type MtlsClient } from "../spiffe/mtls_client.ts";
import { isKeeper, isNexus, type TrustRoots } from "../spiffe/roles.ts";

/** Which role the server at a URL must have. */
export type ProbedRole = "nexus" | "keeper";

/** An answer: HTTP status and body text. */
export interface ProbeAnswer {
  /** HTTP status. */
  readonly status: number;
  /** Body as text. */
  readonly body: string;
}

/** GETs operational endpoints; `get` rejects with a readable message when there is no answer. */
export interface Probe {
  /** GETs `path` of the server at `baseUrl`, which must have `role`. */
  get(baseUrl: string, path: string, role: ProbedRole): Promise<ProbeAnswer>;
  /** Drops connections. */
  close(): void;
}

/** Largest body read from an operational endpoint. */
const MAX_BODY_BYTES = 64 * 1024;

/** A probe that checks each server's SVID and role with `identity`'s trust bundle. */
export function verifiedProbe(identity: IdentitySource, roots: TrustRoots, timeoutMs: number): Probe {
  const clients: Record<ProbedRole, MtlsClient> = {
    nexus: createMtlsClient({
      identity,
      serverId: (id) => isNexus(id, roots),
      timeoutMs,
      maxResponseBytes: MAX_BODY_BYTES,
    }),
    keeper: createMtlsClient({
      identity,
      serverId: (id) => isKeeper(id, roots),
      timeoutMs,
      maxResponseBytes: MAX_BODY_BYTES,
    }),
  };
  return {
    async get(baseUrl, path, role) {
      try {
        const response = await clients[role].request("GET", joinUrl(baseUrl, path));
        return { status: response.status, body: new TextDecoder().decode(response.body) };
      } catch (error) {
        if (error instanceof MtlsError) throw new Error(error.message);
        throw error;
      }
    },
    close() {
      clients.nexus.close();
      clients.keeper.close();
    },
  };
}

/**
 * A probe that checks nothing about the server (for hosts with no SVID):
 * the answer is only as trustworthy as the network path to it.
 */
export function unverifiedProbe(timeoutMs: number): Probe {
  const agent = new https.Agent({ keepAlive: false });
  return {
    get: (baseUrl, path) => plainGet(joinUrl(baseUrl, path), agent, timeoutMs),
    close: () => agent.destroy(),
  };
}

function plainGet(url: URL, agent: https.Agent, timeoutMs: number): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: "GET", agent, rejectUnauthorized: false }, (response) => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      response.on("data", (chunk: Uint8Array) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) request.destroy(new Error(`answer from ${url.origin} is too large`));
        else chunks.push(chunk);
      });
      response.on("error", (error: Error) => reject(new Error(`request to ${url.origin} failed: ${error.message}`)));
      response.on("end", () => {
        const body = new Uint8Array(size);
        let offset = 0;
        for (const chunk of chunks) {
          body.set(chunk, offset);
          offset += chunk.length;
        }
        resolve({ status: response.statusCode ?? 0, body: new TextDecoder().decode(body) });
      });
    });
    const timer = setTimeout(
      () => request.destroy(new Error(`GET ${url.origin}${url.pathname} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    request.on("close", () => clearTimeout(timer));
    request.on("error", (error: Error & { code?: string }) => {
      clearTimeout(timer);
      reject(
        new Error(
          error.code === "ECONNREFUSED"
            ? `connection refused to ${url.origin}`
            : error.message.includes(url.origin)
            ? error.message
            : `request to ${url.origin} failed: ${error.message}`,
        ),
      );
    });
    request.end();
  });
}

/** `base` (with or without a trailing slash or path) joined with an absolute `path`. */
function joinUrl(base: string, path: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${path}`;
  url.search = "";
  return url;
}
