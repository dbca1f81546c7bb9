/**
 * Test helper: a bare HTTPS request that presents any certificate (or none)
 * and trusts any server, to poke a server with SVIDs a real client would
 * never send.
 *
 * @module
 */

import https from "node:https";
import type { TLSSocket } from "node:tls";
import type { X509Identity } from "../identity.ts";

/** What came back, plus the server certificate seen on the connection. */
export interface RawResponse {
  /** HTTP status. */
  readonly status: number;
  /** Body as text. */
  readonly text: string;
  /** Response headers. */
  readonly headers: Record<string, string | string[] | undefined>;
  /** The server's leaf certificate serial number (hex, upper case as node reports it). */
  readonly serverSerial: string;
  /** The server's URI SANs, as node formats them (`URI:spiffe://…`). */
  readonly serverSan: string;
}

/** Options for {@linkcode rawRequest}. */
export interface RawRequestOptions {
  /** Client SVID to present; none when absent. */
  identity?: X509Identity;
  /** HTTP method; default GET. */
  method?: string;
  /** Request body. */
  body?: string | Uint8Array;
  /** Extra headers. */
  headers?: Record<string, string>;
}

/** Makes one request on a fresh connection (no agent, no keep-alive). */
export function rawRequest(port: number, path: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port,
      path,
      method: options.method ?? "GET",
      agent: false,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      key: options.identity ? new TextDecoder().decode(options.identity.privateKeyPem) : undefined,
      cert: options.identity?.certChainPem,
      headers: options.headers,
    }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate();
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => text += chunk);
      res.once("error", reject);
      res.once("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          text,
          headers: res.headers,
          serverSerial: peer.serialNumber ?? "",
          serverSan: peer.subjectaltname ?? "",
        }));
    });
    req.once("error", reject);
    req.end(options.body);
  });
}
