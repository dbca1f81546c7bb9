/**
 * Sends service manager notifications as Unix datagrams, in-process: no
 * `systemd-notify` child (that would need `--allow-run` and
 * `NotifyAccess=all`) and no C library.
 *
 * Deno (2.9) can only send a Unix datagram from a socket bound to a path
 * (its `unixpacket` transport is a `SOCK_DGRAM` socket, the kind systemd
 * listens with), and that API is behind `--unstable-net`. The sending end is
 * bound in the unit's runtime directory (`$RUNTIME_DIRECTORY/notify.sock`,
 * from `RuntimeDirectory=`), so the permission flags can name it exactly;
 * without one, a fresh temporary directory is used.
 *
 * @module
 */
import { join } from "node:path";

/** What the notifier sends through. */
export interface NotifyTransport {
  /** Sends one datagram to the service manager. */
  send(message: Uint8Array): Promise<void>;
  /** Closes the socket and removes its file. */
  close(): Promise<void>;
}

/** Deno's unstable Unix datagram socket, as much of it as is used here. */
interface UnixDatagramConn {
  send(data: Uint8Array, to: { transport: "unixpacket"; path: string }): Promise<number>;
  close(): void;
}
type ListenDatagram = (options: { transport: "unixpacket"; path: string }) => UnixDatagramConn;

/** File name of the sending end inside its directory. */
export const NOTIFY_BIND_NAME = "notify.sock";

/**
 * The path the sending end is bound to when `RUNTIME_DIRECTORY` is set (its
 * first entry: systemd lists several separated by `:`), else undefined.
 */
export function notifyBindPath(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const dir = env.RUNTIME_DIRECTORY?.split(":")[0]?.trim();
  return dir ? join(dir, NOTIFY_BIND_NAME) : undefined;
}

/**
 * Opens a datagram socket bound to `bindPath` (or in a new temporary
 * directory) that sends to `target`.
 *
 * @throws {Error} when Deno runs without `--unstable-net`, or may not bind
 *   or reach the paths (the message says which)
 */
export async function openNotifySocket(target: string, bindPath?: string): Promise<NotifyTransport> {
  const listenDatagram = (Deno as unknown as { listenDatagram?: ListenDatagram }).listenDatagram;
  if (typeof listenDatagram !== "function") {
    throw new Error("NOTIFY_SOCKET is set, but Deno's Unix datagram sockets need the --unstable-net flag");
  }
  const tempDir = bindPath === undefined ? await Deno.makeTempDir({ prefix: "spike-notify-" }) : undefined;
  const path = bindPath ?? join(tempDir!, NOTIFY_BIND_NAME);
  let conn: UnixDatagramConn;
  try {
    // A previous run that was killed leaves its socket file behind; bind fails on it.
    await Deno.remove(path).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    conn = listenDatagram({ transport: "unixpacket", path });
  } catch (error) {
    if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    throw new Error(`cannot open a socket at ${path} to notify the service manager: ${(error as Error).message}`);
  }
  // Deno refuses a second send while one is in flight ("Socket already in
  // use"): a status change and a watchdog ping can coincide, so queue them.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    send(message) {
      const sent = queue.then(() => conn.send(message, { transport: "unixpacket", path: target }));
      queue = sent.catch(() => {});
      return sent.then(() => {});
    },
    async close() {
      conn.close();
      await Deno.remove(tempDir ?? path, { recursive: true }).catch(() => {});
    },
  };
}
