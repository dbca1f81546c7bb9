/**
 * Parsing of Workload API endpoints (`SPIFFE_ENDPOINT_SOCKET`), apart from
 * the gRPC client so a bad setting is reported at once without loading
 * gRPC (which only the Workload API source needs).
 *
 * @module
 */

import { isIP } from "node:net";
import { IdentitySourceError } from "./identity_check.ts";

/** A parsed Workload API endpoint. */
export interface WorkloadApiEndpoint {
  /** `unix` (a socket path) or `tcp` (an IP address and port). */
  readonly kind: "unix" | "tcp";
  /** The address in the form `@grpc/grpc-js` takes. */
  readonly grpcTarget: string;
}

/**
 * Parses a Workload API endpoint the way the SPIFFE Workload Endpoint
 * standard defines it: `unix://` with an absolute path and no authority, or
 * `tcp://` with an IP address (no host name) and a port, and nothing else.
 *
 * @throws {IdentitySourceError} `bad_endpoint` saying what is wrong.
 */
export function parseWorkloadApiEndpoint(endpoint: string): WorkloadApiEndpoint {
  const bad = (why: string) =>
    new IdentitySourceError(
      "bad_endpoint",
      `invalid Workload API endpoint ${JSON.stringify(endpoint)}: ${why} ` +
        `(expected unix:///path/to/api.sock or tcp://IP:port)`,
    );
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw bad("not a URL");
  }
  if (url.username !== "" || url.password !== "") throw bad("user info is not allowed");
  if (url.search !== "" || url.hash !== "") throw bad("query and fragment are not allowed");
  if (url.protocol === "unix:") {
    if (url.host !== "") throw bad("a unix endpoint has no host (use three slashes: unix:///path)");
    if (!url.pathname.startsWith("/") || url.pathname === "/") throw bad("missing socket path");
    return { kind: "unix", grpcTarget: `unix://${decodeURIComponent(url.pathname)}` };
  }
  if (url.protocol === "tcp:") {
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host) === 0) throw bad("a tcp endpoint needs an IP address, not a host name");
    if (url.port === "") throw bad("a tcp endpoint needs a port");
    if (url.pathname !== "" && url.pathname !== "/") throw bad("a tcp endpoint has no path");
    return { kind: "tcp", grpcTarget: `${isIP(host) === 6 ? `[${host}]` : host}:${url.port}` };
  }
  throw bad(`scheme ${JSON.stringify(url.protocol.slice(0, -1))} is not supported`);
}
