/**
 * A TCP relay on loopback that a test can cut and restore, to play a
 * database (or any server) going away and coming back on the same address.
 *
 * @module
 */

/** A relay from one local port to another. */
export interface TcpRelay {
  /** The port clients connect to. */
  readonly port: number;
  /** Stops accepting and drops every relayed connection (the server "goes down"). */
  cut(): Promise<void>;
  /** Accepts and relays again on the same port. */
  restore(): void;
  /** Cuts for good. */
  close(): Promise<void>;
}

/**
 * Relays connections to 127.0.0.1:`from` on to 127.0.0.1:`to`. With
 * `startCut`, nothing listens on `from` until `restore()` is called.
 */
export function startTcpRelay(from: number, to: number, options: { startCut?: boolean } = {}): TcpRelay {
  let listener: Deno.Listener | undefined;
  let accepting: Promise<void> = Promise.resolve();
  const open = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();

  const track = (work: Promise<unknown>) => {
    const done = work.then(() => {}, () => {});
    pipes.add(done);
    done.then(() => pipes.delete(done));
  };

  const relay = async (inbound: Deno.Conn) => {
    let outbound: Deno.Conn;
    try {
      outbound = await Deno.connect({ hostname: "127.0.0.1", port: to });
    } catch {
      inbound.close();
      return;
    }
    open.add(inbound);
    open.add(outbound);
    track(inbound.readable.pipeTo(outbound.writable));
    track(outbound.readable.pipeTo(inbound.writable));
  };

  const restore = () => {
    if (listener) return;
    const current = Deno.listen({ hostname: "127.0.0.1", port: from });
    listener = current;
    accepting = (async () => {
      for await (const inbound of current) await relay(inbound);
    })().catch(() => {});
  };

  const cut = async () => {
    listener?.close();
    listener = undefined;
    await accepting;
    for (const conn of open) {
      try {
        conn.close();
      } catch { /* already closed by a finished pipe */ }
    }
    open.clear();
    await Promise.all(pipes);
  };

  if (!options.startCut) restore();
  return { port: from, cut, restore, close: cut };
}
