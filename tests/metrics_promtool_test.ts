/**
 * The metrics, the alert rules and the dashboard against each other and
 * against Prometheus's own tool: a real Nexus (SQLite) with three real
 * Keepers, bootstrapped and used; `promtool check metrics` on what each
 * serves at /metrics; `promtool check rules` on deploy/prometheus/; and
 * every metric name the rules and the Grafana dashboard query is one that
 * real output carries.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { getPlain } from "../lib/dev/health.ts";
import { missingTool, promtool, runTool } from "./support/deploy_tools.ts";
import { type CommandResult, eventually, freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RULES = join(ROOT, "deploy/prometheus/spike-rules.yaml");
const SCRAPE_CONFIG = join(ROOT, "deploy/prometheus/prometheus.yml");
const DASHBOARD = join(ROOT, "deploy/grafana/spike.json");
/** Made by Prometheus itself for every target, never by an exporter. */
const SYNTHETIC = new Set(["up"]);

const tool = await promtool();

/** PromQL's words that are not metric names. */
const KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "inf",
  "nan",
]);

/**
 * The metric names a PromQL expression selects: identifiers left after
 * removing strings, label matchers, range and subquery brackets and grouping
 * label lists, that are not functions (followed by `(`) or keywords.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    // Numbers and durations (`0.99`, `5m`, `1e3`).
    .replace(/(?<![A-Za-z0-9_:])\d[\d.]*(?:[eE][+-]?\d+)?[a-z]*/g, " ");
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice(match.index! + match[0].length).trimStart();
    if (after.startsWith("(") || KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** Every PromQL expression of the dashboard: panel targets and template variable queries. */
function dashboardExpressions(dashboard: Record<string, unknown>): string[] {
  const out: string[] = [];
  const visit = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === "object") {
      const record = value as Record<string, unknown>;
      if (typeof record.expr === "string") out.push(record.expr);
      Object.values(record).forEach(visit);
    }
  };
  visit(dashboard.panels);
  const variables = (dashboard.templating as { list: Array<{ definition?: string }> }).list;
  for (const v of variables) {
    const query = /^label_values\((.*),\s*\w+\)$/.exec(v.definition ?? "");
    if (query) out.push(query[1]!);
  }
  return out;
}

/** Metric names in exposition text: families (from TYPE lines, with histogram parts) and sample names. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      names.add(type[1]!);
      if (type[2] === "histogram") { for (const part of ["_bucket", "_sum", "_count"]) names.add(type[1]! + part); }
    } else if (line && !line.startsWith("#")) names.add(/^[^{ ]+/.exec(line)![0]);
  }
  return names;
}

function exits(result: CommandResult, code: number, what: string): void {
  assert.equal(result.code, code, `${what}: exit ${result.code}\n${result.stdout}\n${result.stderr}`);
}

Deno.test("metricNamesIn finds selectors, not functions, keywords, labels or durations", () => {
  assert.deepEqual(
    metricNamesIn(
      'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{code=~"5..",x="by"}[$__rate_interval]))) ' +
        "> on (instance) group_left () (2 * b) and c offset 5m",
    ).sort(),
    ["a_bucket", "b", "c"],
  );
  assert.deepEqual(metricNamesIn("time() - x_seconds > 0"), ["x_seconds"]);
});

Deno.test({
  name: "promtool: real Nexus and Keeper /metrics pass check metrics; rules and dashboard use only real names",
  ignore: !tool && missingTool("promtool", "apt-get install prometheus"),
  fn: async () => {
    const rules = await runTool(tool!, ["check", "rules", RULES]);
    assert.equal(rules.code, 0, rules.output);
    const config = await runTool(tool!, ["check", "config", "--syntax-only", SCRAPE_CONFIG]);
    assert.equal(config.code, 0, config.output);

    const tmp = await Deno.makeTempDir({ prefix: "spike_promtool_" });
    const ids = join(tmp, "ids");
    const nexusPort = freePort();
    const keeperPorts = [freePort(), freePort(), freePort()];
    const shared = {
      SPIKE_NEXUS_API_URL: `https://127.0.0.1:${nexusPort}`,
      SPIKE_NEXUS_KEEPER_PEERS: keeperPorts.map((p) => `https://127.0.0.1:${p}`).join(","),
      SPIKE_NEXUS_SHAMIR_SHARES: "3",
      SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
    };
    const as = (name: string, extra: Record<string, string> = {}) => ({
      ...shared,
      SPIKE_SVID_DIR: join(ids, name),
      ...extra,
    });
    const running: SpikeProcess[] = [];
    try {
      exits(await runSpike(["dev", "identities", "--dir", join(tmp, "ca"), "--out", ids]), 0, "identities");
      keeperPorts.forEach((port, i) =>
        running.push(
          new SpikeProcess(["keeper"], {
            env: as(`keeper-${i + 1}`, { SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}` }),
          }),
        )
      );
      running.push(
        new SpikeProcess(["nexus"], {
          env: as("nexus", {
            SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
            SPIKE_NEXUS_BACKEND_STORE: "sqlite",
            SPIKE_NEXUS_DATA_DIR: join(tmp, "data"),
            SPIKE_NEXUS_AUDIT_LOG: join(tmp, "audit.log"),
            SPIKE_NEXUS_RATE_LIMIT: "1000",
          }),
        }),
      );
      await Promise.all(running.map((child) => child.waitFor(/listening/)));
      exits(await runSpike(["bootstrap"], { env: as("bootstrap") }), 0, "bootstrap");
      await waitForReady(nexusPort);
      const pilot = (args: string[]) => runSpike(args, { env: as("pilot-superuser") });
      exits(await pilot(["secret", "put", "app/db", "user=app", "pass=not-in-metrics"]), 0, "put");
      exits(await pilot(["secret", "get", "app/db"]), 0, "get");
      exits(await pilot(["secret", "get", "missing/path"]), 3, "get missing");
      exits(
        await pilot([
          "policy",
          "create",
          "--name",
          "p",
          "--spiffeid-pattern",
          "^spiffe://spike\\.ist/app$",
          "--path-pattern",
          "^y$",
          "--permissions",
          "read",
        ]),
        0,
        "policy",
      );
      await eventually(async () => {
        const body = (await getPlain(nexusPort, "/metrics")).body;
        return /^spike_nexus_keeper_last_push_success_timestamp_seconds\{keeper="keeper-3"\} [1-9]/m.test(body);
      }, "Nexus recorded its first push to every Keeper");

      // Scraped twice: some values (event-loop lag, store counts) settle after the first scrape.
      await getPlain(nexusPort, "/metrics");
      const nexus = (await getPlain(nexusPort, "/metrics")).body;
      const keeper = (await getPlain(keeperPorts[0]!, "/metrics")).body;
      for (const [who, text] of [["Nexus", nexus], ["Keeper", keeper]] as const) {
        const checked = await runTool(tool!, ["check", "metrics"], { stdin: text });
        assert.equal(checked.code, 0, `promtool check metrics on ${who}'s /metrics:\n${checked.output}`);
        assert.doesNotMatch(text, /not-in-metrics|app\/db|missing\/path/);
        for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"]) {
          assert.match(text, new RegExp(`^${name} `, "m"), `${who} shows ${name}`);
        }
        assert.match(text, /^nodejs_eventloop_lag_p99_seconds /m);
        assert.match(text, /^# TYPE nodejs_gc_duration_seconds histogram$/m, `${who} shows GC time`);
      }
      // Nexus allocates enough by now to have collected garbage; a Keeper that
      // has done little since its start may not have yet.
      assert.match(nexus, /^nodejs_gc_duration_seconds_count\{kind="\w+"\} [1-9]/m, "Nexus counted GC");
      assert.match(nexus, /^spike_nexus_secrets 1$/m);
      assert.match(nexus, /^spike_nexus_policies 1$/m);
      assert.match(nexus, /^spike_nexus_keeper_up\{keeper="keeper-2"\} 1$/m);
      assert.match(nexus, /^spike_nexus_store_operation_duration_seconds_count\{operation="read_secret"\} [1-9]/m);
      assert.match(keeper, /^spike_keeper_shard_held 1$/m);

      const real = new Set([...exposedNames(nexus), ...exposedNames(keeper), ...SYNTHETIC]);
      const ruleFile = parseYaml(await Deno.readTextFile(RULES)) as {
        groups: Array<{ rules: Array<{ expr: string }> }>;
      };
      const ruleExprs = ruleFile.groups.flatMap((g) => g.rules.map((r) => r.expr));
      const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD));
      const dashboardExprs = dashboardExpressions(dashboard);
      assert.ok(ruleExprs.length >= 9 && dashboardExprs.length >= 30, `${ruleExprs.length} / ${dashboardExprs.length}`);
      for (const [where, exprs] of [["rules", ruleExprs], ["dashboard", dashboardExprs]] as const) {
        for (const expr of exprs) {
          const names = metricNamesIn(expr);
          assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
          for (const name of names) assert.ok(real.has(name), `${where} uses ${name}, which no real /metrics has`);
        }
      }
    } finally {
      await Promise.all(running.map((child) => child.stop()));
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("the Grafana dashboard: a recent schema, data source as a variable, every panel on it", async () => {
  const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD));
  assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  const variable = dashboard.templating.list.find((v: { type: string }) => v.type === "datasource");
  assert.equal(variable?.query, "prometheus");
  const ids = new Set<number>();
  for (const panel of dashboard.panels) {
    assert.ok(!ids.has(panel.id), `panel id ${panel.id} twice`);
    ids.add(panel.id);
    if (panel.type === "row") continue;
    assert.equal(panel.datasource?.uid, `\${${variable.name}}`, panel.title);
    for (const target of panel.targets) assert.equal(target.datasource?.uid, `\${${variable.name}}`, panel.title);
  }
});
