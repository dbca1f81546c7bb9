/**
 * The heart of `spike agent`: keeps each configured file equal to its
 * secret's current version.
 *
 * Each entry is polled on its own with the cheap metadata call (interval
 * ±10 % jitter, so many agents do not beat in step); the values are read only
 * when the version differs from the one last rendered. A file is replaced
 * atomically and only when its bytes would change, and only then does its
 * `on_change` action run. Errors never touch a rendered file: while Nexus is
 * unreachable, not ready (503) or rate-limiting (429) the last good file
 * stays and the entry is retried with exponential backoff; a deleted secret
 * leaves its file in place unless the entry says `on_delete: remove`.
 *
 * Clock, sleep, randomness, file system and actions are injected.
 *
 * @module
 */
import { ApiCallError } from "../client/errors.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";
import type { SecretMetadata } from "../client/nexus_client.ts";
import type { Logger } from "../log/logger.ts";
import { type FileOps, realFiles } from "./atomic_file.ts";
import { type ChangeFacts, runChangeAction } from "./change_action.ts";
import type { AgentConfig, AgentEntry, ChangeAction } from "./config.ts";
import { renderEntry, RenderError } from "./render.ts";

/** The two reads the agent makes (`NexusClient` has both). */
export interface SecretReader {
  /** Metadata of `path` (version 0 = current). */
  getSecretMetadata(path: string, version?: number): Promise<SecretMetadata>;
  /** Values of one version of `path`. */
  getSecret(path: string, version?: number): Promise<Record<string, string>>;
}

/** What the agent is built from. */
export interface AgentDeps {
  /** The parsed configuration. */
  readonly config: AgentConfig;
  /** Nexus. */
  readonly reader: SecretReader;
  /** Diagnostics (never values). */
  readonly log: Logger;
  /** File system; default the real one. */
  readonly files?: FileOps;
  /** Runs an `on_change`; default {@linkcode runChangeAction}. */
  readonly runAction?: (action: ChangeAction, facts: ChangeFacts) => Promise<void>;
  /** Waits `ms`, resolving early when `signal` aborts; default a timer. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Uniform [0, 1) for jitter; default `Math.random`. */
  readonly random?: () => number;
}

/** A running agent. */
export interface SecretAgent {
  /** Renders every entry once (retrying an unreachable Nexus a few times); true when all succeeded. */
  once(): Promise<boolean>;
  /** Keeps every entry current until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
}

/** Attempts per entry in `once` mode while Nexus is unreachable or not ready. */
export const ONCE_ATTEMPTS = 5;

/** How one check of an entry ended. */
type Outcome =
  | { readonly kind: "ok" }
  | { readonly kind: "transient"; readonly reason: string; readonly retryAfterMs?: number }
  | { readonly kind: "failed"; readonly reason: string };

/** What the agent remembers about one entry between checks. */
interface EntryState {
  /** Version in the file: undefined = not rendered by this process yet, 0 = the secret is gone. */
  rendered?: number;
  /** Consecutive transient failures. */
  failures: number;
  /** The last problem logged, so a repeating one is logged once. */
  problem?: string;
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });

/**
 * The wait before retrying after `failures` transient failures in a row:
 * from min(interval, 1 s), doubling, at most `maxBackoffMs`, and never
 * shorter than what a 429's `Retry-After` asked for.
 */
export function backoffDelay(failures: number, intervalMs: number, maxBackoffMs: number, retryAfterMs = 0): number {
  const base = Math.min(intervalMs, 1000);
  const delay = Math.min(maxBackoffMs, base * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.max(delay, retryAfterMs);
}

/** Creates the agent. Nothing happens until `once` or `run`. */
export function createSecretAgent(deps: AgentDeps): SecretAgent {
  const { config, reader, log } = deps;
  const files = deps.files ?? realFiles;
  const runAction = deps.runAction ?? runChangeAction;
  const sleep = deps.sleep ?? defaultSleep;
  const random = deps.random ?? Math.random;
  const jitter = (ms: number) => Math.round(ms * (0.9 + 0.2 * random()));
  const where = (entry: AgentEntry) => ({ path: entry.path, destination: entry.destination });

  /** Logs a problem once while it lasts (repeats go to debug). */
  const report = (entry: AgentEntry, state: EntryState, outcome: Exclude<Outcome, { kind: "ok" }>, extra = {}) => {
    const fields = { ...where(entry), error: outcome.reason, ...extra };
    if (state.problem === outcome.reason) {
      log.debug("still failing", fields);
      return;
    }
    state.problem = outcome.reason;
    if (outcome.kind === "transient") {
      log.warn("Nexus unavailable; keeping the last rendered file and retrying", fields);
    } else log.error("cannot render secret", fields);
  };

  const recovered = (entry: AgentEntry, state: EntryState) => {
    if (state.problem !== undefined) log.info("recovered", { ...where(entry), after: state.problem });
    state.problem = undefined;
    state.failures = 0;
  };

  /** The secret has no version to render: missing, deleted, or the pinned version is gone. */
  const gone = async (entry: AgentEntry, state: EntryState): Promise<Outcome> => {
    if (state.rendered === undefined) {
      return { kind: "failed", reason: entry.version ? `version ${entry.version} not found` : "secret not found" };
    }
    if (state.rendered === 0) return { kind: "ok" };
    state.rendered = 0;
    if (entry.onDelete === "remove") {
      try {
        await files.remove(entry.destination);
      } catch (error) {
        return { kind: "failed", reason: `cannot remove ${entry.destination}: ${(error as Error).message}` };
      }
      log.warn("secret deleted; file removed (on_delete: remove)", where(entry));
    } else log.warn("secret deleted; keeping the last rendered file", where(entry));
    return { kind: "ok" };
  };

  /** One poll of one entry. */
  const check = async (entry: AgentEntry, state: EntryState): Promise<Outcome> => {
    let target: number;
    try {
      const meta = await reader.getSecretMetadata(entry.path, entry.version ?? 0);
      target = entry.version ?? meta.metadata.currentVersion;
      const info = meta.versions[String(target)];
      if (target === 0 || (info !== undefined && info.deletedTime !== null)) return await gone(entry, state);
    } catch (error) {
      if (error instanceof ApiCallError && error.status === 404) return await gone(entry, state);
      return classify(error, entry);
    }
    if (state.rendered === target) return { kind: "ok" };

    let text: string;
    try {
      // Read exactly the version the metadata named, so file and version agree.
      const values = await reader.getSecret(entry.path, target);
      text = renderEntry(entry, values);
    } catch (error) {
      if (error instanceof ApiCallError && error.status === 404) {
        return { kind: "transient", reason: "changed while read" };
      }
      if (error instanceof RenderError) return { kind: "failed", reason: `version ${target}: ${error.message}` };
      return classify(error, entry);
    }

    const bytes = new TextEncoder().encode(text);
    try {
      const existing = await files.read(entry.destination);
      const same = existing !== undefined && existing.mode === entry.mode && constantTimeEqual(existing.bytes, bytes) &&
        (entry.owner === undefined ||
          (existing.uid === entry.owner.uid && (entry.owner.gid === undefined || existing.gid === entry.owner.gid)));
      existing?.bytes.fill(0);
      if (same) {
        log.debug("file already current", { ...where(entry), version: target });
        state.rendered = target;
        return { kind: "ok" };
      }
      await files.write(entry.destination, bytes, { mode: entry.mode, owner: entry.owner });
    } catch (error) {
      return { kind: "failed", reason: `cannot write ${entry.destination}: ${(error as Error).message}` };
    } finally {
      bytes.fill(0);
    }
    state.rendered = target;
    log.info("rendered", { ...where(entry), version: target });
    if (entry.onChange) {
      try {
        await runAction(entry.onChange, { path: entry.path, destination: entry.destination, version: target });
        log.info("on_change done", { ...where(entry), action: entry.onChange.kind });
      } catch (error) {
        // The file is right; a failed reload is the application's problem to report.
        log.error("on_change failed", {
          ...where(entry),
          action: entry.onChange.kind,
          error: (error as Error).message,
        });
      }
    }
    return { kind: "ok" };
  };

  /** Checks, and logs what the outcome means. */
  const step = async (entry: AgentEntry, state: EntryState, signal?: AbortSignal): Promise<Outcome> => {
    const outcome = await check(entry, state);
    // A call cut short by shutdown is no problem worth a log line.
    if (signal?.aborted) return outcome;
    if (outcome.kind === "ok") recovered(entry, state);
    else if (outcome.kind === "transient") {
      state.failures++;
      report(entry, state, outcome, { attempt: state.failures });
    } else {
      state.failures = 0;
      report(entry, state, outcome);
    }
    return outcome;
  };

  const delayAfter = (outcome: Outcome, state: EntryState) =>
    outcome.kind === "transient"
      ? jitter(backoffDelay(state.failures, config.intervalMs, config.maxBackoffMs, outcome.retryAfterMs))
      : jitter(config.intervalMs);

  return {
    async once() {
      const results = await Promise.all(config.entries.map(async (entry) => {
        const state: EntryState = { failures: 0 };
        for (let attempt = 1;; attempt++) {
          const outcome = await step(entry, state);
          if (outcome.kind !== "transient") return outcome.kind === "ok";
          if (attempt >= ONCE_ATTEMPTS) return false;
          await sleep(delayAfter(outcome, state));
        }
      }));
      return results.every(Boolean);
    },
    async run(signal) {
      await Promise.all(config.entries.map(async (entry) => {
        const state: EntryState = { failures: 0 };
        while (!signal.aborted) {
          const outcome = await step(entry, state, signal);
          if (signal.aborted) break;
          await sleep(delayAfter(outcome, state), signal);
        }
      }));
    },
  };
}

/** Sorts an error from Nexus into retry-soon (transient) or a real failure. */
function classify(error: unknown, entry: AgentEntry): Outcome {
  if (error instanceof ApiCallError) {
    if (error.status === 401) {
      return { kind: "failed", reason: `${error.message} (read on ${entry.path})` };
    }
    if (error.status === 429) {
      const retryAfterMs = (error.retryAfterSeconds ?? 1) * 1000;
      return { kind: "transient", reason: error.message, retryAfterMs };
    }
    if (error.status >= 500) return { kind: "transient", reason: error.message };
    return { kind: "failed", reason: error.message };
  }
  // No answer at all: refused, reset, timed out, TLS failure.
  return { kind: "transient", reason: `Nexus unreachable: ${(error as Error)?.message ?? String(error)}` };
}
