/**
 * The service manager's end of the notification protocol, for tests: a
 * Unix datagram socket bound to a path (as systemd's `/run/systemd/notify`)
 * that records every message with its sender and arrival time.
 *
 * Deno's Unix datagram sockets are unstable API: the suite runs with
 * `--unstable-net` (tests/run.ts).
 *
 * @module
 */

/** One received notification. */
export interface ReceivedNotification {
  /** Path the sender's socket is bound to (tells processes apart). */
  readonly from: string;
  /** Its `KEY=VALUE` assignments. */
  readonly fields: Readonly<Record<string, string>>;
  /** `performance.now()` at arrival. */
  readonly at: number;
}

interface DatagramConn {
  receive(): Promise<[Uint8Array, { transport: string; path?: string }]>;
  close(): void;
}
type ListenDatagram = (options: { transport: "unixpacket"; path: string }) => DatagramConn;

/** A listening notification socket. */
export class NotifyListener {
  readonly #conn: DatagramConn;
  readonly #received: ReceivedNotification[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #loop: Promise<void>;

  /** Binds `path` and starts recording. */
  constructor(readonly path: string) {
    const listen = (Deno as unknown as { listenDatagram?: ListenDatagram }).listenDatagram;
    if (typeof listen !== "function") throw new Error("the notification listener needs deno --unstable-net");
    this.#conn = listen({ transport: "unixpacket", path });
    this.#loop = this.#receiveAll();
  }

  /** Everything received so far, oldest first. */
  get received(): readonly ReceivedNotification[] {
    return this.#received;
  }

  /** Waits for the first message (from `from`, if given) that `match` accepts; throws after `timeoutMs`. */
  async waitFor(
    match: (fields: Readonly<Record<string, string>>) => boolean,
    options: { from?: string; timeoutMs?: number } = {},
  ): Promise<ReceivedNotification> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    while (true) {
      const hit = this.#received.find((n) =>
        (options.from === undefined || n.from === options.from) && match(n.fields)
      );
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no matching notification; received:\n${JSON.stringify(this.#received, null, 1)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 250));
        const waiters = this.#waiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  /** Stops listening and removes the socket file. */
  async close(): Promise<void> {
    this.#conn.close();
    await this.#loop;
    await Deno.remove(this.path).catch(() => {});
  }

  async #receiveAll(): Promise<void> {
    const decoder = new TextDecoder();
    while (true) {
      let packet: [Uint8Array, { transport: string; path?: string }];
      try {
        packet = await this.#conn.receive();
      } catch {
        return; // closed
      }
      const fields: Record<string, string> = {};
      for (const line of decoder.decode(packet[0]).split("\n")) {
        const eq = line.indexOf("=");
        if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
      }
      this.#received.push({ from: packet[1].path ?? "", fields, at: performance.now() });
      for (const wake of [...this.#waiters]) wake();
    }
  }
}
