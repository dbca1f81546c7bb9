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
 * error is `{"err": code}`, and every request leaves one audit record.
 *
 * @module
 */
import { Hono } from "hono";
import { ApiError } from "../api/errors.ts";
import { CLIENT_CLOSED_STATUS, ClientClosedError } from "../api/client_closed.ts";
import { setNoCacheHeaders } from "../api/no_cache.ts";
import { readBodyCapped } from "../api/body.ts";
import { type AuditNote, outcomeOf } from "./audit.ts";
import { withAuditedChanges } from "./audited_store.ts";
import { describeCaller } from "./caller.ts";
import type { NexusDeps } from "./deps.ts";
import type { PeerBindings } from "./peer.ts";
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

const ROUTES: readonly Route[] = [
  ...secretRoutes,
  ...secretExtensionRoutes,
  ...policyRoutes,
  ...cipherRoutes,
  ...operatorRoutes,
  ...bootstrapRoutes,
  ...auditRoutes,
];

const OPERATIONAL: ReadonlySet<string> = new Set(["/health", "/ready", "/metrics"]);

const ROUTE_TABLE: ReadonlyMap<string, Route> = new Map(ROUTES.map((r) => [`${r.path}?${r.action}`, r]));

/** Hono environment of the Nexus app: the peer from the TLS layer, the audit note per request. */
export type NexusEnv = {
  Bindings: PeerBindings;
  Variables: { audit: AuditNote };
};

/** Records the wire error code for the audit record (operational requests have no note). */
function noteError(note: AuditNote | undefined, code: string): void {
  if (note) note.err = code;
}

/** Creates the Nexus app. Serve it with the mTLS adapter, passing `{ peer }`. */
export function createNexusApp(deps: NexusDeps): Hono<NexusEnv> {
  const app = new Hono<NexusEnv>();

  app.use(async (c, next) => {
    const started = performance.now();
    deps.metrics?.requestStarted();
    try {
      await next();
    } finally {
      deps.metrics?.requestEnded();
    }
    setNoCacheHeaders(c.res.headers);
    if (deps.metrics) {
      const key = `${c.req.path}?${c.req.query("action") ?? ""}`;
      // Only known routes become labels; anything else is "other".
      const route = ROUTE_TABLE.has(key) ? key.replace(/\?$/, "") : OPERATIONAL.has(c.req.path) ? c.req.path : "other";
      deps.metrics.observe(route, c.res.status, (performance.now() - started) / 1000);
    }
  });

  // Every request but the operational GETs leaves one audit record, whatever its outcome.
  app.use(async (c, next) => {
    if (OPERATIONAL.has(c.req.path) && (c.req.method === "GET" || c.req.method === "HEAD")) return await next();
    const started = performance.now();
    const note: AuditNote = {};
    c.set("audit", note);
    const peer = c.env?.peer;
    const request = new RequestAudit(deps.audit, deps.clock, note, {
      spiffeId: peer?.ok ? peer.spiffeId : null,
      route: c.req.path,
      action: c.req.query("action") ?? "",
    });
    await next();
    const answered = await request.finish({
      time: deps.clock().toISOString(),
      type: "audit",
      trail: request.trail,
      spiffeId: peer?.ok ? peer.spiffeId : null,
      route: c.req.path,
      action: c.req.query("action") ?? "",
      resource: note.resource ?? null,
      permissions: note.permissions ?? null,
      ...(note.resources ? { resources: note.resources } : {}),
      status: c.res.status,
      err: note.err ?? null,
      outcome: outcomeOf(c.res.status),
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    });
    // Fail-closed: an answer that changed nothing never leaves without its record.
    if (!answered) c.res = c.json({ err: "state_not_ready" }, 503);
  });

  app.get("/health", (c) => c.json({ status: "ok" }));

  // Unauthenticated: states, counts and times only — never a key, shard or key check value.
  app.get("/ready", async (c) => {
    const readiness = await checkReadiness(deps);
    const keepers = deps.keeperStatus?.view();
    return c.json({
      ...readiness,
      version: SPIKE_VERSION,
      ...(keepers === undefined ? {} : { keepers }),
    }, readiness.ready ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    if (!deps.metrics) throw new ApiError("api_bad_request", "metrics are off");
    return c.body(await deps.metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });

  app.all("*", async (c) => {
    const route = ROUTE_TABLE.get(`${c.req.path}?${c.req.query("action") ?? ""}`);
    if (c.req.method !== "POST" || !route) throw new ApiError("api_bad_request", "unknown method, path or action");
    const peer = c.env?.peer;
    if (!peer?.ok) throw new ApiError("access_unauthorized", peer ? peer.reason : "no peer identity");
    const decision = deps.rateLimiter?.take(peer.spiffeId);
    if (decision && !decision.allowed) {
      deps.metrics?.rateLimited();
      c.header("retry-after", String(decision.retryAfterSeconds));
      throw new ApiError("api_rate_limited", "caller over its rate limit");
    }
    const caller = describeCaller(peer.spiffeId, deps.settings.trustRoots);
    if (!route.admit(caller)) throw new ApiError("access_unauthorized", "role not allowed on this route");
    if (route.needsRootKey && !deps.keys.ready) throw new ApiError("state_not_ready");
    const body = await readBodyCapped(c.req.raw, deps.settings.maxBodyBytes);
    const contentType = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    const audit = c.get("audit");
    const result = await route.handle({ caller, body, contentType, deps: withAuditedChanges(deps, audit), audit });
    if (result instanceof Response) return result;
    return c.json(result);
  });

  app.onError((error, c) => {
    if (error instanceof ClientClosedError) {
      // The client's doing, not a failure: recorded as 499, never as a 5xx.
      deps.log.debug("request aborted by the client", { path: c.req.path });
      return new Response(null, { status: CLIENT_CLOSED_STATUS });
    }
    if (error instanceof ApiError) {
      // Not-ready is a state, not a failure: it is logged once when it starts.
      if (error.status >= 500 && error.code !== "state_not_ready") {
        deps.log.error("request failed", { path: c.req.path, detail: error.message });
      } else deps.log.debug("request refused", { path: c.req.path, code: error.code, detail: error.message });
      noteError(c.get("audit"), error.code);
      const reason = error.reason === undefined ? {} : { reason: error.reason };
      return c.json({ err: error.code, ...reason }, error.status as 400);
    }
    // Unknown errors never reach the client; their message may still be
    // useful to operators and carries no request data by construction.
    deps.log.error("unexpected error", { path: c.req.path, error: String((error as Error)?.message ?? error) });
    noteError(c.get("audit"), "api_internal_error");
    return c.json({ err: "api_internal_error" }, 500);
  });

  app.notFound((c) => {
    noteError(c.get("audit"), "api_bad_request");
    return c.json({ err: "api_bad_request" }, 400);
  });
  return app;
}
