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

/**
 * Decides `GET /ready`. The answer also carries **[ours]** the root key
 * version this Nexus seals new data under (`keyVersion`) and where a
 * rotation stands (`rotation`: `idle`, `preparing`, `sealing`).
 */
export async function readiness(deps: NexusDeps): Promise<Readiness> {
  if (!deps.keys.ready) return { status: 503, body: { ready: false, reason: "root key not loaded" } };
  if (!deps.store) return { status: 200, body: { ready: true } };
  let tampered: number;
  let rotation: string;
  try {
    await deps.store.ping();
    rotation = (await deps.store.keyState()).phase;
    tampered = (await deps.policies.generation(deps.store)).tampered.length;
  } catch {
    return { status: 503, body: { ready: false, reason: "backend store not answering" } };
  }
  const keyVersion = deps.keys.writeVersion;
  if (tampered === 0) return { status: 200, body: { ready: true, tampered: false, keyVersion, rotation } };
  return {
    status: 200,
    body: {
      ready: true,
      tampered: true,
      reason: `store tampered: ${tampered} policy row(s) failed authentication and are treated as absent`,
      keyVersion,
      rotation,
    },
  };
}

/** The rotation phases as the gauge's values. */
const PHASE_VALUE = { idle: 0, preparing: 1, sealing: 2 } as const;

/**
 * State metrics: root key versions, rotation phase and progress, tampered
 * policy rows now, and distinct tampered rows seen since start.
 */
export async function stateMetrics(deps: NexusDeps): Promise<MetricFamily[]> {
  const families: MetricFamily[] = [{
    name: "spike_nexus_root_key_version",
    help: "The root key version this Nexus seals new data under (0: no key held).",
    type: "gauge",
    samples: [{ value: deps.keys.ready ? deps.keys.writeVersion : 0 }],
  }, {
    name: "spike_nexus_root_key_versions_held",
    help: "Root key versions held in memory (2 while a rotation runs).",
    type: "gauge",
    samples: [{ value: deps.keys.heldVersions().length }],
  }];
  const state = await deps.store?.keyState().catch(() => undefined);
  if (state) {
    families.push({
      name: "spike_nexus_rotation_phase",
      help: "Root key rotation phase in the store: 0 idle, 1 preparing, 2 sealing.",
      type: "gauge",
      samples: [{ value: PHASE_VALUE[state.phase] }],
    }, {
      name: "spike_nexus_rotation_records_to_reseal",
      help: "Records under the old root key version when the running rotation began sealing (0 when idle).",
      type: "gauge",
      samples: [{ value: state.toReseal }],
    });
  }
  const rotation = deps.keyManager.rotation;
  if (rotation) {
    families.push({
      name: "spike_nexus_rotation_records_resealed",
      help: "Records this Nexus re-sealed in the rotation it drives or drove last.",
      type: "gauge",
      samples: [{ value: rotation.resealedHere }],
    });
  }
  families.push({
    name: "spike_nexus_policy_tampered_total",
    help: "Distinct stored policy rows found failing authentication (or plain text) since start.",
    type: "counter",
    samples: [{ value: deps.policies.tamperedTotal }],
  });
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
