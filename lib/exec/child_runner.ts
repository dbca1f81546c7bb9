/**
 * Runs the command `spike exec` wraps, the way a shell's `exec` would look
 * from outside: the child shares spike's stdin, stdout and stderr, the
 * signals a supervisor sends to spike (SIGTERM from Kubernetes or systemd,
 * SIGHUP to reload, SIGINT) are passed on to the child, and spike ends with
 * the child's exit code — `128 + n` when signal `n` killed it, as shells
 * report it.
 *
 * @module
 */

/** Signals passed on to the child; those Deno cannot catch (KILL, STOP) reach only spike. */
export const FORWARDED_SIGNALS: readonly Deno.Signal[] = Object.freeze([
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
]);

/** Where signal listeners are registered (the real process by default). */
export interface SignalHub {
  /** Registers `handler` for `signal`. */
  add(signal: Deno.Signal, handler: () => void): void;
  /** Removes a handler registered with `add`. */
  remove(signal: Deno.Signal, handler: () => void): void;
}

/** The process's own signal listeners. */
export const processSignals: SignalHub = Object.freeze({
  add: (signal: Deno.Signal, handler: () => void) => Deno.addSignalListener(signal, handler),
  remove: (signal: Deno.Signal, handler: () => void) => Deno.removeSignalListener(signal, handler),
});

/** What to run. */
export interface ChildSpec {
  /** Program name (looked up on spike's own PATH) or path. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** The child's environment: exactly this when `clearEnv`, else added to spike's own. */
  readonly env: Readonly<Record<string, string>>;
  /** Start from an empty environment instead of spike's. */
  readonly clearEnv: boolean;
}

/** The command could not be started (not found, not executable). */
export class ChildStartError extends Error {
  /** The exit code a shell uses for this: 127 not found, 126 cannot execute. */
  readonly exitCode: number;
  /** Creates the error. */
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = "ChildStartError";
    this.exitCode = exitCode;
  }
}

/**
 * Starts the child, passes signals on until it ends, and resolves with the
 * exit code spike should end with.
 *
 * @throws {ChildStartError} when the command cannot be started.
 */
export async function runChild(spec: ChildSpec, signals: SignalHub = processSignals): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(spec.command, {
      args: [...spec.args],
      env: { ...spec.env },
      clearEnv: spec.clearEnv,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new ChildStartError(`command not found: ${spec.command}`, 127);
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new ChildStartError(`cannot execute ${spec.command}: permission denied`, 126);
    }
    throw new ChildStartError(`cannot start ${spec.command}: ${(error as Error).message}`, 126);
  }
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => {
      try {
        child.kill(signal);
      } catch {
        // The child has just exited; its status is on its way.
      }
    };
    signals.add(signal, handler);
    return [signal, handler] as const;
  });
  try {
    const status = await child.status;
    // Deno reports 128 + n for a child killed by signal n, like a shell.
    return status.code;
  } finally {
    for (const [signal, handler] of handlers) signals.remove(signal, handler);
  }
}
