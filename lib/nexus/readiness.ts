/**
 * What `GET /ready` answers and the state metrics `GET /metrics` adds to the
 * request counts: whether Nexus holds its key, whether the store answers,
 * and whether the store was tampered with.
 *
 * A tampered store keeps `/ready` at 200. The rows that fail
 * authentication are already treated as absent (they can deny, never
 * grant), so serving stays safe; answering 503 would let anyone who can
 * write one row into the database take every Nexus out of its load
 * balancer. The answer says `"tampered": true` with a reason instead, the
 * error log names the rows, and `spike_nexus_policies_tampered` /
 * `spike_nexus_policy_tampered_total` are there to alert on.
 *
 * @module
 */
import type { NexusDeps } from "./deps.ts";
import type { MetricFamily } from "./metrics.ts";

/** Status and JSON body of `GET /ready`. */
export interface Readiness {
  /** 200 or 503. */
  readonly status: 200 | 503;
  /** The JSON answer. */
  readonly body: Record<string, unknown>;
}

/** Decides `GET /ready`. */
export async function readiness(deps: NexusDeps): Promise<Readiness> {
  if (!deps.keys.ready) return { status: 503, body: { ready: false, reason: "root key not loaded" } };
  if (!deps.store) return { status: 200, body: { ready: true } };
  let tampered: number;
  try {
    await deps.store.ping();
    tampered = (await deps.policies.generation(deps.store)).tampered.length;
  } catch {
    return { status: 503, body: { ready: false, reason: "backend store not answering" } };
  }
  if (tampered === 0) return { status: 200, body: { ready: true, tampered: false } };
  return {
    status: 200,
    body: {
      ready: true,
      tampered: true,
      reason: `store tampered: ${tampered} policy row(s) failed authentication and are treated as absent`,
    },
  };
}

/** State metrics: tampered policy rows now, and distinct tampered rows seen since start. */
export function stateMetrics(deps: NexusDeps): MetricFamily[] {
  const families: MetricFamily[] = [{
    name: "spike_nexus_policy_tampered_total",
    help: "Distinct stored policy rows found failing authentication (or plain text) since start.",
    type: "counter",
    samples: [{ value: deps.policies.tamperedTotal }],
  }];
  const tampered = deps.policies.lastGeneration?.tampered.length;
  if (tampered !== undefined) {
    families.push({
      name: "spike_nexus_policies_tampered",
      help: "Stored policy rows failing authentication in the current policy generation (treated as absent).",
      type: "gauge",
      samples: [{ value: tampered }],
    });
  }
  return families;
}
