/**
 * The Nexus HTTP application: SPIKE v1 routes behind mTLS, dispatched by
 * path and `?action=`, plus plain `GET /health`, `GET /ready` (root key,
 * store and Keeper exchange states, the version, and [ours] the root key
 * version, rotation phase and whether the store was tampered with) and `GET /metrics`
 * (Prometheus text; counts, states and latencies, no secrets; see `metrics.ts`).
 *
 * Order of checks for `/v1/...`: method and route (400) → authenticated
 * peer (401) → the caller's rate limit (429) → the route's role gate (401)
 * → root key loaded (503) → body (413/400) → policy (401) → the work. Every
 * error is `{"err": code}`, and every request but the operational GETs
 * leaves one audit record.
 *
 * The app takes a {@linkcode NexusRequest} and gives a
 * {@linkcode NexusAnswer}: plain data, no Fetch `Request`/`Response` and no
 * framework. `http_handler.ts` carries them over `node:http`; tests call
 * {@linkcode NexusApp.handle} directly. A Hono app behind the Fetch bridge
 * did the same job at 1.5x the CPU per request (docs/ARCHITECTURE.md).
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import { CLIENT_CLOSED_STATUS, ClientClosedError } from "../api/client_closed.ts";
import { NO_CACHE_HEADERS } from "../api/no_cache.ts";
import { type AuditNote, outcomeOf } from "./audit.ts";
import { withAuditedChanges } from "./audited_store.ts";
import { describeCaller, type NexusCaller } from "./caller.ts";
import type { NexusDeps } from "./deps.ts";
import type { PeerResult } from "./peer.ts";
import { RequestAudit } from "./request_audit.ts";
import type { Route } from "./route.ts";
import { checkReadiness } from "./readiness.ts";
import { auditRoutes } from "./routes/audit.ts";
import { bootstrapRoutes } from "./routes/bootstrap.ts";
import { cipherRoutes } from "./routes/cipher.ts";
import { operatorRoutes } from "./routes/operator.ts";
import { policyRoutes } from "./routes/policies.ts";
import { secretRoutes } from "./routes/secrets.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import { secretExtensionRoutes } from "./routes/secret_extensions.ts";
import { SPIKE_VERSION } from "../version.ts";

/** Every `/v1` route Nexus serves (tests check each is served, audited and metered). */
export const NEXUS_ROUTES: readonly Route[] = [
  ...secretRoutes,
  ...secretExtensionRoutes,
  ...policyRoutes,
  ...cipherRoutes,
  ...operatorRoutes,
  ...bootstrapRoutes,
  ...auditRoutes,
];

const OPERATIONAL: ReadonlySet<string> = new Set(["/health", "/ready", "/metrics"]);

/** Routes by path, then by `?action=`. */
const ROUTE_TABLE: ReadonlyMap<string, ReadonlyMap<string, Route>> = (() => {
  const table = new Map<string, Map<string, Route>>();
  for (const route of NEXUS_ROUTES) {
    let actions = table.get(route.path);
    if (!actions) table.set(route.path, actions = new Map());
    actions.set(route.action, route);
  }
  return table;
})();

/** Metric label of each route: its path, and `?action` when it has one. */
const ROUTE_LABELS: ReadonlyMap<Route, string> = new Map(
  NEXUS_ROUTES.map((route) => [route, route.action ? `${route.path}?${route.action}` : route.path]),
);

/** Callers remembered by SPIFFE ID (classifying one parses the ID); bounded. */
const MAX_CACHED_CALLERS = 1024;

const JSON_TYPE = "application/json";
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": JSON_TYPE,
  ...NO_CACHE_HEADERS,
});
const METRICS_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": PROMETHEUS_CONTENT_TYPE,
  ...NO_CACHE_HEADERS,
});

/** One request, as whatever carried it hands it over. */
export interface NexusRequest {
  /** HTTP method, as sent. */
  readonly method: string;
  /** URL path (percent-decoded as a router sees it), e.g. `/v1/store/secrets`. */
  readonly path: string;
  /** The `?action=` value, `""` when absent. */
  readonly action: string;
  /** The `Content-Type` header as sent, `""` when absent. */
  readonly contentType: string;
  /** Who sent it, as the TLS layer decided; absent when nothing authenticated it. */
  readonly peer: PeerResult | undefined;
  /**
   * Reads the whole body, at most `limit` bytes. Rejects with a 413
   * `ApiError` beyond, and with `ClientClosedError` when the client hangs up
   * first. Called at most once.
   */
  readonly body: (limit: number) => Promise<Uint8Array>;
}

/** The answer to one request. */
export interface NexusAnswer {
  /** HTTP status (499 when the client went away: recorded, never sent). */
  readonly status: number;
  /** Response headers, lower-case names (the no-cache headers always among them). */
  readonly headers: Readonly<Record<string, string>>;
  /** The body: JSON text or bytes (empty for 499). */
  readonly body: string | Uint8Array;
}

/** The Nexus application. */
export interface NexusApp {
  /** Answers one request; never rejects (failures become answers). */
  handle(request: NexusRequest): Promise<NexusAnswer>;
}

function json(status: number, body: unknown, headers: Readonly<Record<string, string>> = JSON_HEADERS): NexusAnswer {
  return { status, headers, body: JSON.stringify(body) };
}

/** Records the wire error code for the audit record (operational requests have no note). */
function noteError(note: AuditNote | undefined, code: string): void {
  if (note) note.err = code;
}

/** A route's ready-made `Response` (octet-stream, or a JSON error with extra fields) as an answer. */
async function fromResponse(response: Response): Promise<NexusAnswer> {
  const headers: Record<string, string> = { ...NO_CACHE_HEADERS };
  response.headers.forEach((value, name) => {
    if (!(name in NO_CACHE_HEADERS)) headers[name] = value;
  });
  return { status: response.status, headers, body: new Uint8Array(await response.arrayBuffer()) };
}

/** Creates the Nexus app. Serve it with `createNexusHttpHandler` (`http_handler.ts`). */
export function createNexusApp(deps: NexusDeps): NexusApp {
  const callers = new Map<string, NexusCaller>();
  const callerOf = (spiffeId: string): NexusCaller => {
    let caller = callers.get(spiffeId);
    if (caller === undefined) {
      if (callers.size >= MAX_CACHED_CALLERS) callers.clear();
      caller = describeCaller(spiffeId, deps.settings.trustRoots);
      callers.set(spiffeId, caller);
    }
    return caller;
  };

  /** The answer to a failure, logged as its kind deserves and noted for the audit record. */
  const failure = (error: unknown, path: string, note: AuditNote | undefined): NexusAnswer => {
    if (error instanceof ClientClosedError) {
      // The client's doing, not a failure: recorded as 499, never as a 5xx.
      deps.log.debug("request aborted by the client", { path });
      return { status: CLIENT_CLOSED_STATUS, headers: NO_CACHE_HEADERS, body: "" };
    }
    if (error instanceof ApiError) {
      // Not-ready is a state, not a failure: it is logged once when it starts.
      if (error.status >= 500 && error.code !== "state_not_ready") {
        deps.log.error("request failed", { path, detail: error.message });
      } else deps.log.debug("request refused", { path, code: error.code, detail: error.message });
      noteError(note, error.code);
      // [ours] an operator-facing reason that carries no data, when the error has one.
      return json(
        error.status,
        error.reason === undefined ? { err: error.code } : { err: error.code, reason: error.reason },
      );
    }
    // Unknown errors never reach the client; their message may still be
    // useful to operators and carries no request data by construction.
    deps.log.error("unexpected error", { path, error: String((error as Error)?.message ?? error) });
    noteError(note, "api_internal_error");
    return json(500, { err: "api_internal_error" });
  };

  /** `/health`, `/ready` and `/metrics` (GET and HEAD): unauthenticated, unaudited. */
  const operational = async (path: string): Promise<NexusAnswer> => {
    if (path === "/health") return json(200, { status: "ok" });
    if (path === "/ready") {
      // States, counts and times only — never a key, shard or key check value.
      const readiness = await checkReadiness(deps);
      const keepers = deps.keeperStatus?.view();
      return json(readiness.ready ? 200 : 503, {
        ...readiness,
        version: SPIKE_VERSION,
        ...(keepers === undefined ? {} : { keepers }),
      });
    }
    if (!deps.metrics) throw new ApiError("api_bad_request", "metrics are off");
    return { status: 200, headers: METRICS_HEADERS, body: await deps.metrics.render() };
  };

  /** A `/v1` route (or anything else that is not an operational GET), without its audit. */
  const api = async (request: NexusRequest, route: Route | undefined, note: AuditNote): Promise<NexusAnswer> => {
    if (request.method !== "POST" || !route) throw new ApiError("api_bad_request", "unknown method, path or action");
    const peer = request.peer;
    if (!peer?.ok) throw new ApiError("access_unauthorized", peer ? peer.reason : "no peer identity");
    const decision = deps.rateLimiter?.take(peer.spiffeId);
    if (decision && !decision.allowed) {
      deps.metrics?.rateLimited();
      note.err = "api_rate_limited";
      deps.log.debug("request refused", { path: request.path, code: "api_rate_limited" });
      return json(429, { err: "api_rate_limited" }, {
        ...JSON_HEADERS,
        "retry-after": String(decision.retryAfterSeconds),
      });
    }
    const caller = callerOf(peer.spiffeId);
    if (!route.admit(caller)) throw new ApiError("access_unauthorized", "role not allowed on this route");
    if (route.needsRootKey && !deps.keys.ready) throw new ApiError("state_not_ready");
    const body = await request.body(deps.settings.maxBodyBytes);
    const contentType = request.contentType.split(";")[0]!.trim().toLowerCase();
    const result = await route.handle({ caller, body, contentType, deps: withAuditedChanges(deps, note), audit: note });
    if (result instanceof Response) return await fromResponse(result);
    return json(200, result);
  };

  /** Runs `api` and writes the request's audit record (fail-closed: no record, no answer). */
  const audited = async (request: NexusRequest, route: Route | undefined, started: number): Promise<NexusAnswer> => {
    const note: AuditNote = {};
    const spiffeId = request.peer?.ok ? request.peer.spiffeId : null;
    const audit = new RequestAudit(deps.audit, deps.clock, note, {
      spiffeId,
      route: request.path,
      action: request.action,
    });
    let answer: NexusAnswer;
    try {
      answer = await api(request, route, note);
    } catch (error) {
      answer = failure(error, request.path, note);
    }
    const answered = await audit.finish({
      time: deps.clock().toISOString(),
      type: "audit",
      trail: audit.trail,
      spiffeId,
      route: request.path,
      action: request.action,
      resource: note.resource ?? null,
      permissions: note.permissions ?? null,
      ...(note.resources ? { resources: note.resources } : {}),
      status: answer.status,
      err: note.err ?? null,
      outcome: outcomeOf(answer.status),
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    });
    // Fail-closed: an answer that changed nothing never leaves without its record.
    return answered ? answer : json(503, { err: "state_not_ready" });
  };

  return {
    async handle(request) {
      const started = performance.now();
      const { method, path } = request;
      const route = ROUTE_TABLE.get(path)?.get(request.action);
      let answer: NexusAnswer;
      let label: string;
      deps.metrics?.requestStarted();
      try {
        if (OPERATIONAL.has(path) && (method === "GET" || method === "HEAD")) {
          label = path;
          try {
            answer = await operational(path);
          } catch (error) {
            answer = failure(error, path, undefined);
          }
        } else {
          // Only known routes become labels; anything else is "other".
          label = route ? ROUTE_LABELS.get(route)! : OPERATIONAL.has(path) ? path : "other";
          answer = await audited(request, route, started);
        }
      } finally {
        deps.metrics?.requestEnded();
      }
      deps.metrics?.observe(label, answer.status, (performance.now() - started) / 1000);
      return answer;
    },
  };
}
