/**
 * Keeps the service manager informed about a running role: `READY=1` once
 * the role says it is ready, `STATUS=` whenever its state line changes, a
 * `WATCHDOG=1` ping every half watchdog period, and `STOPPING=1` at
 * shutdown.
 *
 * The pings come from a timer on the event loop: when the loop is stuck
 * (a runaway computation, a blocking call) they stop, and the manager
 * restarts the process after `WatchdogSec=`.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import { encodeNotifyMessage, type NotifyMessage, notifySettingsFromEnv } from "./notify.ts";
import { notifyBindPath, openNotifySocket } from "./notify_socket.ts";

/** A role's state as the service manager should see it. */
export interface Readiness {
  /** Whether the role does its job (Nexus: `/ready` would answer 200). */
  readonly ready: boolean;
  /** One line for `systemctl status`. */
  readonly status: string;
}

/** What the notifier needs. */
export interface ServiceNotifierOptions {
  /** Sends one notification (tests record them; production sends a datagram). */
  send(message: NotifyMessage): Promise<void>;
  /** The role's current state; called once at start and then every `pollIntervalMs`. */
  readiness(): Promise<Readiness>;
  /** Milliseconds between watchdog pings; no pings when absent. */
  readonly watchdogIntervalMs?: number;
  /** Milliseconds between readiness checks (default 1000). */
  readonly pollIntervalMs?: number;
  /** Structured log: a failing send is logged once per run of failures. */
  readonly log: Logger;
}

/** A running notifier. */
export interface ServiceNotifier {
  /** Stops the timers and sends `STOPPING=1`. */
  stopping(): Promise<void>;
}

/** Starts reporting `readiness` (and pinging the watchdog) until `stopping()`. */
export function startServiceNotifier(options: ServiceNotifierOptions): ServiceNotifier {
  const { log } = options;
  let stopped = false;
  let readySent = false;
  let lastStatus: string | undefined;
  let checking = false;
  let failing = false;

  const send = async (message: NotifyMessage): Promise<void> => {
    try {
      await options.send(message);
      failing = false;
    } catch (error) {
      if (!failing) log.warn("cannot notify the service manager", { error: (error as Error).message });
      failing = true;
    }
  };

  const check = async (): Promise<void> => {
    // A slow check (a store ping on a busy database) must not pile up behind itself.
    if (checking || stopped) return;
    checking = true;
    try {
      const state = await options.readiness();
      if (stopped) return;
      const message: { ready?: true; status?: string } = {};
      if (state.ready && !readySent) message.ready = true;
      if (state.status !== lastStatus) message.status = state.status;
      if (message.ready || message.status !== undefined) {
        readySent ||= state.ready;
        lastStatus = state.status;
        await send(message);
      }
    } catch (error) {
      log.warn("readiness check failed", { error: (error as Error).message });
    } finally {
      checking = false;
    }
  };

  const poll = setInterval(() => void check(), options.pollIntervalMs ?? 1000);
  void check();
  let watchdog: ReturnType<typeof setInterval> | undefined;
  if (options.watchdogIntervalMs !== undefined) {
    void send({ watchdog: true });
    watchdog = setInterval(() => void send({ watchdog: true }), options.watchdogIntervalMs);
  }

  return {
    async stopping() {
      if (stopped) return;
      stopped = true;
      clearInterval(poll);
      if (watchdog !== undefined) clearInterval(watchdog);
      await send({ stopping: true, status: "stopping" });
    },
  };
}

/** A notifier wired to the socket the environment names. */
export interface ManagedService extends ServiceNotifier {
  /** Closes the socket (after `stopping()`). */
  close(): Promise<void>;
}

/**
 * Starts a notifier when the process runs under a service manager
 * (`NOTIFY_SOCKET` set); undefined otherwise.
 *
 * @throws {Error} when `NOTIFY_SOCKET` is set but cannot be used, so a
 *   `Type=notify` unit fails at once rather than at its start timeout
 */
export async function startManagedService(options: {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly pid: number;
  readiness(): Promise<Readiness>;
  readonly log: Logger;
}): Promise<ManagedService | undefined> {
  const settings = notifySettingsFromEnv(options.env, options.pid);
  if (!settings) return undefined;
  const socket = await openNotifySocket(settings.socketPath, notifyBindPath(options.env));
  options.log.info("notifying the service manager", {
    socket: settings.socketPath,
    watchdogIntervalMs: settings.watchdogIntervalMs ?? null,
  });
  const notifier = startServiceNotifier({
    send: (message) => socket.send(encodeNotifyMessage(message)),
    readiness: options.readiness,
    log: options.log,
    ...(settings.watchdogIntervalMs === undefined ? {} : { watchdogIntervalMs: settings.watchdogIntervalMs }),
  });
  return {
    stopping: () => notifier.stopping(),
    close: () => socket.close(),
  };
}
