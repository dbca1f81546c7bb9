/**
 * The service manager notification protocol (systemd's `sd_notify`), as
 * data: which socket to tell, how often the watchdog wants to hear from us,
 * and the `KEY=VALUE` lines of one message. No IO here; the datagram is sent
 * by `notify_socket.ts`.
 *
 * @module
 */

/** One notification: every field set is one `KEY=VALUE` line. */
export interface NotifyMessage {
  /** `READY=1`: start-up is finished (the unit becomes active). */
  readonly ready?: true;
  /** `STATUS=…`: one line shown by `systemctl status`. */
  readonly status?: string;
  /** `WATCHDOG=1`: the keep-alive ping. */
  readonly watchdog?: true;
  /** `STOPPING=1`: shutdown has begun. */
  readonly stopping?: true;
}

/** Where notifications go and how often the watchdog must be pinged. */
export interface NotifySettings {
  /** Absolute path of the service manager's datagram socket (`NOTIFY_SOCKET`). */
  readonly socketPath: string;
  /**
   * Milliseconds between watchdog pings: half of `WATCHDOG_USEC`, as systemd
   * recommends, so one late timer does not cost a restart. Absent when no
   * watchdog is armed for this process.
   */
  readonly watchdogIntervalMs?: number;
}

/** A notification setting the process cannot work with. */
export class NotifyConfigError extends Error {
  /** Creates an error naming the variable. */
  constructor(variable: string, reason: string) {
    super(`${variable}: ${reason}`);
    this.name = "NotifyConfigError";
  }
}

/** Longest `STATUS=` text sent; systemd shows one line, and a datagram must stay small. */
const MAX_STATUS_LENGTH = 200;

/**
 * Encodes `message` as the newline-separated assignments systemd reads.
 * A status is cut to one line of at most 200 characters: a newline in it
 * would start an assignment of its own.
 */
export function encodeNotifyMessage(message: NotifyMessage): Uint8Array {
  const lines: string[] = [];
  if (message.ready) lines.push("READY=1");
  if (message.stopping) lines.push("STOPPING=1");
  if (message.status !== undefined) {
    const oneLine = message.status.replace(/[\r\n\0]+/g, " ").trim();
    lines.push(`STATUS=${oneLine.slice(0, MAX_STATUS_LENGTH)}`);
  }
  if (message.watchdog) lines.push("WATCHDOG=1");
  if (lines.length === 0) throw new RangeError("a notification needs at least one field");
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

/**
 * Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` the way
 * `sd_notify(3)` and `sd_watchdog_enabled(3)` define them. Undefined when
 * no service manager is listening (the usual case outside systemd).
 *
 * @param pid this process's id: a watchdog armed for another PID is not ours
 * @throws {NotifyConfigError} for values that cannot be honoured, so a
 *   `Type=notify` unit fails at once instead of timing out
 */
export function notifySettingsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
): NotifySettings | undefined {
  const socketPath = env.NOTIFY_SOCKET?.trim();
  if (!socketPath) return undefined;
  if (socketPath.startsWith("@")) {
    // Deno binds and addresses Unix datagram sockets by path only.
    throw new NotifyConfigError("NOTIFY_SOCKET", "abstract socket addresses (@…) are not supported; use a path");
  }
  if (!socketPath.startsWith("/")) {
    throw new NotifyConfigError("NOTIFY_SOCKET", `'${socketPath}' is not an absolute path`);
  }
  const watchdogIntervalMs = watchdogInterval(env, pid);
  return watchdogIntervalMs === undefined ? { socketPath } : { socketPath, watchdogIntervalMs };
}

function watchdogInterval(env: Readonly<Record<string, string | undefined>>, pid: number): number | undefined {
  const usecText = env.WATCHDOG_USEC?.trim();
  if (!usecText) return undefined;
  if (!/^\d+$/.test(usecText)) {
    throw new NotifyConfigError("WATCHDOG_USEC", `'${usecText}' is not a number of microseconds`);
  }
  const usec = Number(usecText);
  if (usec === 0) return undefined;
  const pidText = env.WATCHDOG_PID?.trim();
  if (pidText) {
    if (!/^\d+$/.test(pidText)) throw new NotifyConfigError("WATCHDOG_PID", `'${pidText}' is not a process id`);
    // Armed for another process (say, the parent that started us): not ours to ping.
    if (Number(pidText) !== pid) return undefined;
  }
  return Math.max(1, Math.floor(usec / 2 / 1000));
}
