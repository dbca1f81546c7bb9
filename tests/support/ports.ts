/**
 * TCP ports for test children that must be told their port before they
 * start (Keepers named in Nexus's peer list, a Nexus the CLI dials).
 *
 * Asking the kernel for port 0 and closing the socket is not enough: the
 * kernel may hand the same port to the next caller, and any outgoing
 * connection of a test running in parallel may take it as its local port
 * before the child binds it. So ports come from below the ephemeral range
 * (Linux: 32768–60999, macOS: 49152–65535), where the kernel never picks,
 * and each one is claimed with an exclusively created file, so no two tests
 * (threads or processes) are given the same port within the claim lifetime.
 *
 * @module
 */
import { join } from "node:path";

/** Where claims live; shared by every test process of this user. */
const CLAIM_DIR = join(Deno.env.get("TMPDIR") ?? "/tmp", "spike-test-ports");
/** Lowest and highest+1 port handed out: clear of the kernel's ephemeral ranges. */
const LOW = 20_000;
const HIGH = 32_000;
/** A claim older than this belongs to a finished run and may be taken again. */
const CLAIM_LIFETIME_MS = 15 * 60_000;

/**
 * A TCP port on 127.0.0.1 that nothing listens on, that no other test has
 * claimed in the last quarter hour, and that the kernel will not hand out as
 * an ephemeral port.
 */
export function freePort(): number {
  Deno.mkdirSync(CLAIM_DIR, { recursive: true });
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (claim(port) && bindable(port)) return port;
  }
  throw new Error(`no free test port in ${LOW}..${HIGH - 1} after 500 tries (claims in ${CLAIM_DIR})`);
}

/** Creates the claim file for `port`; false when a live claim exists. */
function claim(port: number): boolean {
  const path = join(CLAIM_DIR, String(port));
  try {
    Deno.writeTextFileSync(path, `${Deno.pid}\n`, { createNew: true });
    return true;
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  // A stale claim is removed, and the port is left for a later attempt so
  // that two tests racing over the same stale file cannot both win it.
  try {
    const age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
    if (age > CLAIM_LIFETIME_MS) Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // another test removed it first
  }
  return false;
}

/** True when a listener can bind `port` on 127.0.0.1 right now. */
function bindable(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}
