/**
 * What runs after a rendered file changed: a signal to the process named by
 * a pid file (how nginx, HAProxy or a Deno/Node app learn to reload), or a
 * command run without a shell and stopped at its timeout, so a hung reload
 * script can never stall the agent.
 *
 * @module
 */
import type { ChangeAction } from "./config.ts";

/** An action that did not complete; the agent logs it and carries on. */
export class ChangeActionError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ChangeActionError";
  }
}

/** Facts about the change, handed to a command as environment variables. */
export interface ChangeFacts {
  /** The secret path (`SPIKE_AGENT_SECRET_PATH`). */
  readonly path: string;
  /** The file written (`SPIKE_AGENT_DESTINATION`). */
  readonly destination: string;
  /** The version now in the file (`SPIKE_AGENT_SECRET_VERSION`). */
  readonly version: number;
}

/** How long a command has between SIGTERM (at its timeout) and SIGKILL. */
const KILL_GRACE_MS = 2_000;

/**
 * Runs `action`.
 *
 * @throws {ChangeActionError} when the pid file is unreadable or stale, the
 *   command cannot start, exits non-zero, or runs past its timeout.
 */
export async function runChangeAction(action: ChangeAction, facts: ChangeFacts): Promise<void> {
  if (action.kind === "signal") await sendSignal(action.signal, action.pidFile);
  else await runCommand(action.command, action.timeoutMs, facts);
}

async function sendSignal(signal: Deno.Signal, pidFile: string): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(pidFile);
  } catch (error) {
    throw new ChangeActionError(`cannot read pid file ${pidFile}: ${(error as Error).message}`);
  }
  const trimmed = text.trim();
  // Never signal 0, 1 or a negative pid (a process group, or everything).
  if (!/^\d+$/.test(trimmed) || Number(trimmed) < 2 || Number(trimmed) > 2 ** 31 - 1) {
    throw new ChangeActionError(`pid file ${pidFile} does not hold a process id`);
  }
  try {
    Deno.kill(Number(trimmed), signal);
  } catch (error) {
    throw new ChangeActionError(
      `cannot send ${signal} to process ${trimmed} (from ${pidFile}): ${(error as Error).message}`,
    );
  }
}

async function runCommand(command: readonly string[], timeoutMs: number, facts: ChangeFacts): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command[0]!, {
      args: command.slice(1),
      env: {
        SPIKE_AGENT_SECRET_PATH: facts.path,
        SPIKE_AGENT_DESTINATION: facts.destination,
        SPIKE_AGENT_SECRET_VERSION: String(facts.version),
      },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    throw new ChangeActionError(`cannot start ${command[0]}: ${(error as Error).message}`);
  }
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    kill(child, "SIGTERM");
    killTimer = setTimeout(() => kill(child, "SIGKILL"), KILL_GRACE_MS);
  }, timeoutMs);
  try {
    const status = await child.status;
    if (timedOut) throw new ChangeActionError(`${command[0]} did not finish within ${timeoutMs} ms and was stopped`);
    if (!status.success) throw new ChangeActionError(`${command[0]} exited with code ${status.code}`);
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
  }
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}
