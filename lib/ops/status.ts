/**
 * `spike status`: asks Nexus and each Keeper for their `/ready` answer and
 * turns the answers into one verdict per component, one line each, and an
 * overall "all is well". Nothing here is secret: the endpoints show states,
 * counts, times and versions only.
 *
 * @module
 */
import type { KeeperStatusView } from "../nexus/keeper_status.ts";
import type { Probe, ProbedRole } from "./probe.ts";

/** What `spike status` found out about Nexus. */
export interface NexusReport {
  /** Base URL asked. */
  readonly url: string;
  /** Whether it answered at all (any HTTP status). */
  readonly reachable: boolean;
  /** Whether it is ready (root key loaded, store answering). */
  readonly ready: boolean;
  /** Why it is not ready or not reachable; `null` when ready. */
  readonly reason: string | null;
  /** `loaded` or `missing`; `null` when unknown (no answer). */
  readonly rootKey: string | null;
  /** `ok`, `unreachable` or `none` (lite mode); `null` when unknown. */
  readonly store: string | null;
  /** Its spike version; `null` when unknown. */
  readonly version: string | null;
  /** What it last saw of its Keepers; `null` without Keepers or when unknown. */
  readonly keepers: KeeperStatusView | null;
}

/** What `spike status` found out about one Keeper. */
export interface KeeperReport {
  /** `keeper-<i>`: position i in the list, which is the Keeper's share index. */
  readonly name: string;
  /** Base URL asked. */
  readonly url: string;
  /** Whether it answered at all. */
  readonly reachable: boolean;
  /** Whether it holds a shard (its `/ready`). */
  readonly shardHeld: boolean;
  /** Why it is not ready or not reachable; `null` when it holds a shard. */
  readonly reason: string | null;
  /** Its spike version; `null` when unknown. */
  readonly version: string | null;
}

/** The whole picture. */
export interface StatusReport {
  /** True exactly when every component asked is reachable and ready. */
  readonly ok: boolean;
  /** The CLI's own version. */
  readonly cli: { readonly version: string };
  /** Nexus, unless it was left out (`--keepers-only`). */
  readonly nexus: NexusReport | null;
  /** The Keepers asked, in order. */
  readonly keepers: readonly KeeperReport[];
}

/** What to ask. */
export interface StatusTargets {
  /** Nexus base URL, or `undefined` to leave Nexus out. */
  readonly nexusUrl?: string;
  /** Keeper base URLs; position i+1 is the share index. */
  readonly keeperUrls: readonly string[];
  /** The CLI's version. */
  readonly cliVersion: string;
}

/** Asks every component at once and builds the report. */
export async function collectStatus(probe: Probe, targets: StatusTargets): Promise<StatusReport> {
  const [nexus, keepers] = await Promise.all([
    targets.nexusUrl === undefined ? null : nexusReport(probe, targets.nexusUrl),
    Promise.all(targets.keeperUrls.map((url, i) => keeperReport(probe, url, `keeper-${i + 1}`))),
  ]);
  const ok = (nexus === null || nexus.ready) && keepers.every((k) => k.shardHeld);
  return { ok, cli: { version: targets.cliVersion }, nexus, keepers };
}

async function nexusReport(probe: Probe, url: string): Promise<NexusReport> {
  const unknown = { rootKey: null, store: null, version: null, keepers: null };
  let answer;
  try {
    answer = await probe.get(url, "/ready", "nexus");
  } catch (error) {
    return { url, reachable: false, ready: false, reason: (error as Error).message, ...unknown };
  }
  const body = parseObject(answer.body);
  if ((answer.status !== 200 && answer.status !== 503) || body === undefined) {
    return {
      url,
      reachable: true,
      ready: false,
      reason: `unexpected answer to GET /ready (HTTP ${answer.status})`,
      ...unknown,
    };
  }
  const ready = answer.status === 200 && body.ready === true;
  return {
    url,
    reachable: true,
    ready,
    reason: ready ? null : stringOr(body.reason, `HTTP ${answer.status}`),
    rootKey: stringOr(body.rootKey, null),
    store: stringOr(body.store, null),
    version: stringOr(body.version, null),
    keepers: keeperView(body.keepers),
  };
}

async function keeperReport(probe: Probe, url: string, name: string): Promise<KeeperReport> {
  let answer;
  try {
    answer = await probe.get(url, "/ready", "keeper");
  } catch (error) {
    return { name, url, reachable: false, shardHeld: false, reason: (error as Error).message, version: null };
  }
  const body = parseObject(answer.body);
  if ((answer.status !== 200 && answer.status !== 503) || body === undefined) {
    return {
      name,
      url,
      reachable: true,
      shardHeld: false,
      reason: `unexpected answer to GET /ready (HTTP ${answer.status})`,
      version: null,
    };
  }
  const held = answer.status === 200 && body.ready === true;
  return {
    name,
    url,
    reachable: true,
    shardHeld: held,
    reason: held ? null : stringOr(body.reason, `HTTP ${answer.status}`),
    version: stringOr(body.version, null),
  };
}

/** The human form: one aligned line per component, then the CLI's version. */
export function renderStatusLines(report: StatusReport): string {
  const rows: [string, string, string, string][] = [];
  const cli = report.cli.version;
  if (report.nexus) {
    const n = report.nexus;
    const state = !n.reachable ? "unreachable" : n.ready ? "ready" : "not ready";
    rows.push(["nexus", n.url, state, nexusDetail(n, cli)]);
  }
  for (const k of report.keepers) {
    const state = !k.reachable ? "unreachable" : k.shardHeld ? "ready" : "not ready";
    const detail = k.shardHeld ? "shard held" : k.reason ?? "";
    rows.push([k.name, k.url, state, detail + versionNote(k.version, cli, k.reachable)]);
  }
  rows.push(["cli", "", "", `version ${cli}`]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => i < 3 ? cell.padEnd(widths[i]!) : cell).join("  ").trimEnd() + "\n")
    .join("");
}

function nexusDetail(n: NexusReport, cli: string): string {
  if (!n.reachable) return n.reason ?? "";
  const parts: string[] = [];
  // The fields say it better than the reason; an older Nexus sends the reason only.
  if (!n.ready && n.reason && n.rootKey === null && n.store === null) parts.push(n.reason);
  if (n.rootKey) parts.push(`root key ${n.rootKey}`);
  if (n.store) parts.push(`store ${n.store}`);
  const k = n.keepers;
  if (k) {
    if (n.rootKey === "missing" && k.shardsFound !== null) {
      parts.push(`keeper shards found ${k.shardsFound} of ${k.threshold} needed`);
    }
    if (k.lastPush) {
      parts.push(`shards last pushed at ${k.lastPush.at} (${k.lastPush.accepted}/${k.configured} Keepers took them)`);
    }
  }
  if (n.version) parts.push(`version ${n.version}${n.version === cli ? "" : ` (CLI is ${cli})`}`);
  return parts.join(", ");
}

function versionNote(version: string | null, cli: string, reachable: boolean): string {
  if (!reachable || version === null) return "";
  return `, version ${version}${version === cli ? "" : ` (CLI is ${cli})`}`;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function stringOr<T>(value: unknown, fallback: T): string | T {
  return typeof value === "string" ? value : fallback;
}

function keeperView(value: unknown): KeeperStatusView | null {
  if (value === null || typeof value !== "object") return null;
  const v = value as Record<string, unknown>;
  const count = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (!count(v.configured) || !count(v.threshold)) return null;
  const push = v.lastPush as Record<string, unknown> | null | undefined;
  return {
    configured: v.configured as number,
    threshold: v.threshold as number,
    shardsFound: count(v.shardsFound) ? v.shardsFound as number : null,
    lastPush: push && typeof push.at === "string" && count(push.accepted)
      ? { at: push.at, accepted: push.accepted as number }
      : null,
  };
}

/** One component's liveness (`spike status --live`). */
export interface LivenessEntry {
  /** `nexus` or `keeper-<i>`. */
  readonly name: string;
  /** Base URL asked. */
  readonly url: string;
  /** Whether it answered `GET /health` with 200 `{"status":"ok"}`. */
  readonly live: boolean;
  /** Why not; `null` when live. */
  readonly reason: string | null;
}

/** What `spike status --live` found: processes up and serving TLS, nothing about keys or shards. */
export interface LivenessReport {
  /** True exactly when every component asked is live. */
  readonly ok: boolean;
  /** Always `live`: tells this report from the readiness one. */
  readonly check: "live";
  /** The CLI's own version. */
  readonly cli: { readonly version: string };
  /** Nexus first (unless left out), then the Keepers in order. */
  readonly components: readonly LivenessEntry[];
}

/**
 * Asks every component's `GET /health` at once: the liveness check, for
 * orchestrators that must not restart a Nexus merely waiting for its key.
 */
export async function collectLiveness(probe: Probe, targets: StatusTargets): Promise<LivenessReport> {
  const asks: Array<Promise<LivenessEntry>> = [];
  if (targets.nexusUrl !== undefined) asks.push(livenessOf(probe, targets.nexusUrl, "nexus", "nexus"));
  targets.keeperUrls.forEach((url, i) => asks.push(livenessOf(probe, url, `keeper-${i + 1}`, "keeper")));
  const components = await Promise.all(asks);
  return { ok: components.every((c) => c.live), check: "live", cli: { version: targets.cliVersion }, components };
}

async function livenessOf(probe: Probe, url: string, name: string, role: ProbedRole): Promise<LivenessEntry> {
  let answer;
  try {
    answer = await probe.get(url, "/health", role);
  } catch (error) {
    return { name, url, live: false, reason: (error as Error).message };
  }
  const live = answer.status === 200 && parseObject(answer.body)?.status === "ok";
  return { name, url, live, reason: live ? null : `unexpected answer to GET /health (HTTP ${answer.status})` };
}

/** The human form of a liveness report: one aligned line per component, then the CLI's version. */
export function renderLivenessLines(report: LivenessReport): string {
  const rows: [string, string, string, string][] = report.components.map((c) => [
    c.name,
    c.url,
    c.live ? "live" : c.reason?.startsWith("unexpected answer") ? "not live" : "unreachable",
    c.reason ?? "",
  ]);
  rows.push(["cli", "", "", `version ${report.cli.version}`]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => i < 3 ? cell.padEnd(widths[i]!) : cell).join("  ").trimEnd() + "\n")
    .join("");
}
