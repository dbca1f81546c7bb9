/**
 * Watching a secret for new versions: poll its metadata (cheap, and no
 * secret value on the wire), and read the values only when
 * `currentVersion` moved. Nexus keeps no subscriptions, so polling is what
 * works against any number of Nexus instances behind a load balancer.
 *
 * A watch never throws into the event loop: a failed poll, a failed
 * callback, even a throwing error handler end up in `onError` (or nowhere),
 * and polling goes on with backoff until `stop()`.
 *
 * @module
 */
import { NotFoundError } from "../client/errors.ts";
import type { SecretMetadata } from "../client/nexus_client.ts";

/** What a watch needs from the client (the SDK passes its own retried calls). */
export interface SecretReader {
  /** Metadata of the secret at `path`. */
  getMetadata(path: string): Promise<SecretMetadata>;
  /** Values of one version. */
  getSecret(path: string, options: { version: number }): Promise<Record<string, string>>;
}

/** What the change callback learns besides the values. */
export interface SecretVersionInfo {
  /** The watched path. */
  readonly path: string;
  /** The version the values belong to (the secret's `currentVersion` when read). */
  readonly version: number;
}

/** Called with the values of each new current version; may be async (calls never overlap). */
export type SecretChangeHandler = (
  values: Record<string, string>,
  info: SecretVersionInfo,
) => void | Promise<void>;

/** Options for watching a secret. */
export interface WatchSecretOptions {
  /** Time between polls, in ms; default 30 000. */
  readonly intervalMs?: number;
  /**
   * Longest wait between polls while they fail, in ms; the wait doubles
   * from `intervalMs` after each failure. Default: the larger of
   * `intervalMs` and 60 000.
   */
  readonly maxBackoffMs?: number;
  /**
   * Told about every failed poll (a `NotFoundError` while the secret does
   * not exist or every version is deleted, an `UnauthorizedError`, a
   * connection error, …) and every error the change handler throws. Default:
   * one line on `console.error`. Errors never carry secret values.
   */
  readonly onError?: (error: unknown, info: { readonly path: string }) => void;
  /**
   * The version the caller already has (e.g. from `getMetadata`): the
   * handler is called only when the current version differs from it.
   * Default: none, so the first poll delivers the current version.
   */
  readonly knownVersion?: number;
}

/** A running watch. */
export interface SecretWatch {
  /** Stops polling; resolves once a poll or handler call in progress has finished. Safe to call twice. */
  stop(): Promise<void>;
}

const DEFAULT_INTERVAL_MS = 30_000;
const MIN_BACKOFF_CAP_MS = 60_000;

/**
 * Polls `path` through `reader` and calls `onChange` with the values of
 * the current version: once at the start (unless `knownVersion` says the
 * caller has it) and again every time `currentVersion` changes — a new
 * write, or a delete or undelete that moved it.
 */
export function watchSecret(
  reader: SecretReader,
  path: string,
  onChange: SecretChangeHandler,
  options: WatchSecretOptions = {},
): SecretWatch {
  const intervalMs = positive(options.intervalMs, "intervalMs") ?? DEFAULT_INTERVAL_MS;
  const maxBackoffMs = positive(options.maxBackoffMs, "maxBackoffMs") ?? Math.max(intervalMs, MIN_BACKOFF_CAP_MS);
  const onError = options.onError ?? defaultOnError;
  const report = (error: unknown) => {
    try {
      onError(error, { path });
    } catch {
      // An error handler that throws must not stop the watch or crash the process.
    }
  };

  let known = options.knownVersion;
  let failures = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let polling: Promise<void> | undefined;

  const poll = async () => {
    try {
      const current = (await reader.getMetadata(path)).metadata.currentVersion;
      if (current !== known) {
        // Every version deleted: nothing to deliver until one comes back.
        if (current === 0) throw new NotFoundError(404, "api_not_found");
        const values = await reader.getSecret(path, { version: current });
        known = current;
        if (stopped) return;
        try {
          await onChange(values, { path, version: current });
        } catch (error) {
          // Not delivered again: the handler saw this version, and retrying it could loop forever.
          report(error);
        }
      }
      failures = 0;
    } catch (error) {
      failures++;
      if (!stopped) report(error);
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      polling = poll().finally(() => {
        polling = undefined;
        schedule();
      });
    }, pollDelay(failures, intervalMs, maxBackoffMs));
  };

  polling = poll().finally(() => {
    polling = undefined;
    schedule();
  });

  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await polling;
    },
  };
}

/** Wait before the next poll after `failures` failed polls in a row: the interval, doubled per failure, capped. */
export function pollDelay(failures: number, intervalMs: number, maxBackoffMs: number): number {
  if (failures === 0) return intervalMs;
  return Math.max(intervalMs, Math.min(maxBackoffMs, intervalMs * 2 ** Math.min(failures, 30)));
}

function positive(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`watchSecret: ${name} must be a positive number`);
  return value;
}

function defaultOnError(error: unknown, info: { readonly path: string }): void {
  console.error(`spike: watching ${info.path}: ${error instanceof Error ? error.message : String(error)}`);
}
