/**
 * The version of this build, from `deno.json`: servers report it on their
 * operational endpoints and `spike status` compares it with its own.
 *
 * @module
 */
import manifest from "../deno.json" with { type: "json" };

/** The spike version of this build, e.g. `0.1.0`. */
export const SPIKE_VERSION: string = manifest.version;
