/**
 * The `cursor` of a paged secret list [ours]: base64url of the last path
 * the previous page examined. Opaque to clients; Nexus only ever reads a
 * path from it, and checks it like any path, so a made-up cursor can start
 * a listing at some point of the sorted path list and no more (what is
 * returned is still filtered by the caller's permissions).
 *
 * @module
 */
import { badRequest } from "./errors.ts";
import { secretPath } from "./validate.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The cursor naming `path`. */
export function encodeListCursor(path: string): string {
  let binary = "";
  for (const byte of encoder.encode(path)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The path a cursor names; 400 unless it is one this server could have given. */
export function decodeListCursor(value: unknown, field = "cursor"): string {
  if (typeof value !== "string" || !/^[A-Za-z0-9_-]{1,700}$/.test(value)) {
    throw badRequest(`${field} is not a cursor this server gave`);
  }
  let path: string;
  try {
    const binary = atob(value.replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(value.length / 4) * 4, "="));
    path = decoder.decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    throw badRequest(`${field} is not a cursor this server gave`);
  }
  return secretPath(path, field);
}
