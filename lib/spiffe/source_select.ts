/**
 * Picks where a process gets its X.509-SVID from: SVID files when a
 * directory is configured (spiffe-helper, cert-manager CSI, …), the SPIFFE
 * Workload API otherwise. The config layer reads `SPIKE_SVID_DIR` and
 * `SPIFFE_ENDPOINT_SOCKET` and passes the values in; this module never reads
 * the environment.
 *
 * @module
 */

import { createFileSource } from "./file_source.ts";
import type { IdentitySource } from "./identity.ts";
import { deferredSource } from "./deferred_source.ts";
import { parseWorkloadApiEndpoint } from "./workload_api_endpoint.ts";
import type { Logger } from "../log/logger.ts";

/** SPIKE's default Workload API endpoint (a SPIRE Agent's public socket). */
export const DEFAULT_ENDPOINT_SOCKET = "unix:///tmp/spire-agent/public/api.sock";

/** Where the identity comes from; unset and empty values mean "not configured". */
export interface IdentitySourceConfig {
  /** A directory in spiffe-helper's layout (`SPIKE_SVID_DIR`); wins when set. */
  svidDir?: string;
  /** The Workload API endpoint (`SPIFFE_ENDPOINT_SOCKET`); default {@linkcode DEFAULT_ENDPOINT_SOCKET}. */
  endpointSocket?: string;
}

/** Knobs passed through to whichever source is chosen. */
export interface SelectOptions {
  /** How long ready() waits for the first identity (each source has its own default). */
  readyTimeoutMs?: number;
  /** Diagnostics; default silent. */
  log?: Logger;
  /**
   * SVID files only: watch the directory for changes besides polling it (default true). A one-shot
   * command turns it off: it never waits for a rotation, and the watcher costs its start a thread.
   */
  watchFiles?: boolean;
}

/** Which source {@linkcode selectIdentitySource} would build, and from where. */
export type IdentitySourceChoice =
  | { readonly kind: "files"; readonly svidDir: string }
  | { readonly kind: "workload_api"; readonly endpoint: string };

/** Decides between SVID files and the Workload API without starting anything. */
export function chooseIdentitySource(config: IdentitySourceConfig): IdentitySourceChoice {
  // An exported-but-empty environment variable is common in container specs: treat it as unset.
  if (config.svidDir !== undefined && config.svidDir !== "") return { kind: "files", svidDir: config.svidDir };
  const endpoint = config.endpointSocket !== undefined && config.endpointSocket !== ""
    ? config.endpointSocket
    : DEFAULT_ENDPOINT_SOCKET;
  return { kind: "workload_api", endpoint };
}

/**
 * Starts the identity source `config` asks for; await its ready() before
 * serving.
 *
 * The Workload API source (and gRPC with it, the costliest module a
 * process would load) is imported only when it is the one chosen.
 *
 * @throws {IdentitySourceError} `bad_endpoint` for a malformed endpoint.
 */
export function selectIdentitySource(config: IdentitySourceConfig, options: SelectOptions = {}): IdentitySource {
  const choice = chooseIdentitySource(config);
  const { watchFiles, ...common } = options;
  if (choice.kind === "files") {
    return createFileSource(choice.svidDir, { ...common, ...(watchFiles === false ? { watch: false } : {}) });
  }
  // Checked now, so a bad setting fails here as it did before the import was deferred.
  parseWorkloadApiEndpoint(choice.endpoint);
  return deferredSource(
    `Workload API at ${choice.endpoint}`,
    async () =>
      (await import("./workload_api_source.ts")).createWorkloadApiSource({ endpoint: choice.endpoint, ...common }),
  );
}
