/**
 * A deliberately badly behaved HTTP/1.1 client over TLS (or bare TCP), for
 * tests that play a hostile client against a real server: requests written
 * byte by byte as the test wants them, answers read off one kept-alive
 * connection, hang-ups at any point. Plus what the tests look at on the
 * server's side: its sockets by TCP state and its resident memory.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import type { X509Identity } from "../../lib/spiffe/identity.ts";

/** One HTTP answer as read off the wire. */
export interface RawAnswer {
  /** Status code. */
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body, de-chunked. */
  readonly body: string;
}

/** A TLS connection the test writes raw bytes to and reads answers from, in order. */
export class RawConnection {
  readonly #socket: tls.TLSSocket | net.Socket;
  #buffer = new Uint8Array(0);
  #closed = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  private constructor(socket: tls.TLSSocket | net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(this.#buffer.length + chunk.length);
      next.set(this.#buffer);
      next.set(chunk, this.#buffer.length);
      this.#buffer = next;
      this.#wake?.();
    });
    socket.on("error", (error: Error) => {
      this.#error = error;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  /** Opens a TLS connection to 127.0.0.1:`port`, presenting `identity` when given (the server is not checked). */
  static open(port: number, identity?: X509Identity): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        ...(identity ? { key: new TextDecoder().decode(identity.privateKeyPem), cert: identity.certChainPem } : {}),
      }, () => {
        socket.off("error", reject);
        resolve(new RawConnection(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Opens a bare TCP connection (no TLS at all) to 127.0.0.1:`port`. */
  static openTcp(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.off("error", reject);
        resolve(new RawConnection(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Whether the server has closed (or reset) the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes `data` as is; resolves once it is handed to the socket (false: the connection is gone). */
  write(data: string | Uint8Array): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#closed || this.#socket.destroyed) return resolve(false);
      this.#socket.write(data, (error) => resolve(!error));
    });
  }

  /** Reads the next complete answer; throws if the connection ends first or after `timeoutMs`. */
  async readAnswer(timeoutMs = 10_000): Promise<RawAnswer> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const parsed = parseAnswer(this.#buffer, this.#closed);
      if (parsed) {
        this.#buffer = this.#buffer.slice(parsed.consumed);
        return parsed.answer;
      }
      if (this.#closed) {
        throw new Error(`connection closed before a whole answer (${this.#error?.message ?? "clean close"})`);
      }
      await this.#waitForMore(deadline, "an answer");
    }
  }

  /** Everything the server sends until it closes the connection; throws after `timeoutMs`. */
  async readUntilClosed(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) await this.#waitForMore(deadline, "the server to close the connection");
    return new TextDecoder().decode(this.#buffer);
  }

  /** Drops the connection at once (a client hanging up). */
  destroy(): void {
    this.#socket.destroy();
  }

  async #waitForMore(deadline: number, what: string): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, left);
      this.#wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
    this.#wake = undefined;
  }
}

/** Parses one answer from the front of `bytes`, or returns undefined while it is incomplete. */
function parseAnswer(bytes: Uint8Array, closed: boolean): { answer: RawAnswer; consumed: number } | undefined {
  const text = new TextDecoder("latin1").decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? Number.NaN);
  if (!Number.isInteger(status)) throw new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let offset = end + 4;
  if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
    let body = "";
    while (true) {
      const lineEnd = text.indexOf("\r\n", offset);
      if (lineEnd < 0) return undefined;
      const size = parseInt(text.slice(offset, lineEnd), 16);
      if (text.length < lineEnd + 2 + size + 2) return undefined;
      body += text.slice(lineEnd + 2, lineEnd + 2 + size);
      offset = lineEnd + 2 + size + 2;
      if (size === 0) return { answer: { status, headers, body }, consumed: offset };
    }
  }
  if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    if (text.length < offset + length) return undefined;
    return { answer: { status, headers, body: text.slice(offset, offset + length) }, consumed: offset + length };
  }
  // No framing: the body runs to the end of the connection.
  if (!closed) return undefined;
  return { answer: { status, headers, body: text.slice(offset) }, consumed: text.length };
}

/**
 * POSTs a body of `size` zero bytes to `path` without a client certificate
 * (declared with `Content-Length`, or chunked), reads the status line of the
 * answer, and hangs up. Resolves with the status, or 0 when the connection
 * broke before an answer.
 */
export async function postAndHangUp(
  port: number,
  path: string,
  size: number,
  options: { chunked?: boolean } = {},
): Promise<number> {
  let connection: RawConnection;
  try {
    connection = await RawConnection.open(port);
  } catch {
    return 0;
  }
  try {
    const framing = options.chunked ? "transfer-encoding: chunked" : `content-length: ${size}`;
    void connection.write(`POST ${path} HTTP/1.1\r\nhost: spike\r\n${framing}\r\n\r\n`);
    const piece = new Uint8Array(64 * 1024);
    for (let sent = 0; sent < size; sent += piece.length) {
      const length = Math.min(piece.length, size - sent);
      const bytes = length === piece.length ? piece : piece.subarray(0, length);
      if (options.chunked) void connection.write(`${length.toString(16)}\r\n`);
      void connection.write(bytes);
      if (options.chunked) void connection.write("\r\n");
    }
    if (options.chunked) void connection.write("0\r\n\r\n");
    return (await connection.readAnswer(15_000)).status;
  } catch {
    return 0;
  } finally {
    connection.destroy();
  }
}

/** How many TCP sockets with local port `port` are in CLOSE-WAIT (Linux, from /proc/net/tcp and tcp6). */
export function closeWaitSockets(port: number): number {
  let count = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const localPort = parseInt(fields[1]?.split(":")[1] ?? "", 16);
      if (localPort === port && fields[3] === "08") count++;
    }
  }
  return count;
}

/** Resident memory of process `pid` in MiB (Linux `VmRSS`). */
export function residentMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}
