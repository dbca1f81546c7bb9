/**
 * The Helm chart (deploy/helm/spike) and its rendered manifests
 * (deploy/k8s), checked by the real tools and against the code:
 * - `helm lint --strict` passes for every values set, and the chart's
 *   values schema and guards refuse bad values;
 * - the checked-in manifests equal a fresh `helm template`;
 * - every built-in object passes `kubernetes-validate --strict` for the
 *   oldest Kubernetes the chart supports and the newest the tool knows; an
 *   object with a wrong field does not;
 * - the ClusterSPIFFEIDs and the ServiceMonitor pass the schemas of their
 *   vendored CRDs (tests/testdata/crds), unknown fields rejected;
 * - what the objects say agrees with the code: each role's environment
 *   resolves through lib/config without error, the Keeper peers are the
 *   per-pod Services, the SPIFFE IDs are the role paths of
 *   lib/spiffe/roles.ts, and the security context, probes, resources,
 *   disruption budgets and network policies are the promised ones.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import {
  resolveBootstrapConfig,
  resolveKeeperConfig,
  resolveNexusConfig,
  resolvePilotConfig,
} from "../lib/config/spike_config.ts";
import { roleEnvironment } from "../lib/config/permissions.ts";
import { ROLE_PATHS } from "../lib/spiffe/roles.ts";
import { loadCrd, validateCustomResource } from "./support/crd_schema.ts";
import { helm } from "./support/helm.ts";
import {
  CHART_DIR,
  MANIFEST_VARIANTS,
  MANIFESTS_DIR,
  RENDER_KUBERNETES_VERSION,
  renderManifest,
} from "./support/k8s_render.ts";
import { kubernetesValidate } from "./support/kubernetes_validate.ts";

/** Kubernetes releases the manifests are validated for: the chart's minimum and the newest the tool knows. */
const VALIDATE_VERSIONS = [RENDER_KUBERNETES_VERSION, "1.37.0"];
const CRDS_DIR = new URL("./testdata/crds/", import.meta.url).pathname;
/** Kinds defined by CRDs, checked against the vendored schemas instead. */
const CUSTOM_KINDS = new Set(["ClusterSPIFFEID", "ServiceMonitor"]);

// deno-lint-ignore no-explicit-any
type K8sObject = Record<string, any>;

async function manifests(file: string): Promise<K8sObject[]> {
  const text = await Deno.readTextFile(join(MANIFESTS_DIR, file));
  return parseAllDocuments(text).map((doc) => doc.toJS()).filter((o): o is K8sObject => o !== null);
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind}/${name} is rendered`);
  return found;
}

/** A container's environment as the process sees it (literal values; files for secrets). */
function envOf(container: K8sObject): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    assert.ok(typeof variable.value === "string", `${variable.name} is a literal`);
    env[variable.name] = variable.value;
  }
  return env;
}

function podSpecOf(object: K8sObject): K8sObject {
  return object.kind === "Job" || object.kind === "StatefulSet" || object.kind === "Deployment"
    ? object.spec.template.spec
    : object.spec;
}

Deno.test("helm lint --strict passes for every values set; bad values are refused", async () => {
  for (const variant of MANIFEST_VARIANTS) {
    const values = variant.values.flatMap((file) => ["--values", join(CHART_DIR, file)]);
    const lint = await helm(["lint", "--strict", "--kube-version", RENDER_KUBERNETES_VERSION, CHART_DIR, ...values]);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
    assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
  const refused = async (set: string, message: RegExp) => {
    const out = await helm(["template", "x", CHART_DIR, "--kube-version", RENDER_KUBERNETES_VERSION, "--set", set]);
    assert.notEqual(out.code, 0, set);
    assert.match(out.stderr, message);
  };
  await refused("shamir.threshold=4", /shamir\.threshold \(4\) is more than shamir\.shares \(3\)/);
  await refused("nexus.backend=postgres", /nexus\.postgres\.url is required/);
  await refused("nexus.backend=mysql", /nexus\/backend/);
  await refused("nexus.replica=2", /additional properties 'replica' not allowed/);
  await refused("trustDomain=Spike.IST", /trustDomain/);
});

Deno.test("deploy/k8s is exactly what the chart renders (deno task k8s:render)", async () => {
  for (const variant of MANIFEST_VARIANTS) {
    const checkedIn = await Deno.readTextFile(join(MANIFESTS_DIR, variant.file));
    assert.ok(checkedIn === await renderManifest(variant), `deploy/k8s/${variant.file} is stale: deno task k8s:render`);
  }
});

Deno.test("kubernetes-validate --strict: every built-in object is valid for Kubernetes 1.31 and 1.37", async () => {
  const files = MANIFEST_VARIANTS.map((v) => join(MANIFESTS_DIR, v.file));
  const objects = (await Promise.all(MANIFEST_VARIANTS.map((v) => manifests(v.file)))).flat();
  const builtIn = objects.filter((o) => !CUSTOM_KINDS.has(o.kind)).length;
  for (const version of VALIDATE_VERSIONS) {
    const { code, output } = await kubernetesValidate(files, version);
    assert.equal(code, 0, output);
    assert.equal(output.match(/^INFO .* passed for resource /gm)?.length, builtIn, output);
    // The only objects it has no schema for are the custom resources, checked below.
    for (const warning of output.match(/^WARN .*$/gm) ?? []) {
      assert.match(warning, /Couldn't find schema for kind (ClusterSPIFFEID|ServiceMonitor) /);
    }
  }
  // The check can fail: a misspelt field and a value of the wrong type are reported.
  const dir = await Deno.makeTempDir({ prefix: "spike_k8s_validate_" });
  try {
    const keeperPdb = find(objects, "PodDisruptionBudget", "spike-keeper");
    const broken = structuredClone(keeperPdb);
    broken.spec.minAvailabel = broken.spec.minAvailable;
    const wrongType = structuredClone(keeperPdb);
    wrongType.spec.minAvailable = { count: 2 };
    for (const [name, object] of [["typo", broken], ["type", wrongType]] as const) {
      await Deno.writeTextFile(join(dir, `${name}.json`), JSON.stringify(object));
      const { code, output } = await kubernetesValidate([join(dir, `${name}.json`)], RENDER_KUBERNETES_VERSION);
      assert.notEqual(code, 0, output);
      assert.match(output, /^ERROR .* did not validate/m);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ClusterSPIFFEIDs and the ServiceMonitor match their CRDs' schemas; unknown fields are caught", async () => {
  const crds = new Map(
    await Promise.all(
      ["spire.spiffe.io_clusterspiffeids.yaml", "monitoring.coreos.com_servicemonitors.yaml"].map(async (file) => {
        const crd = await loadCrd(join(CRDS_DIR, file));
        return [crd.kind, crd] as const;
      }),
    ),
  );
  let checked = 0;
  for (const variant of MANIFEST_VARIANTS) {
    for (const object of (await manifests(variant.file)).filter((o) => CUSTOM_KINDS.has(o.kind))) {
      assert.deepEqual(
        validateCustomResource(object, crds.get(object.kind)!),
        [],
        `${object.kind}/${object.metadata.name}`,
      );
      checked++;
    }
  }
  assert.equal(checked, 4 + 6 + 1, "4 ClusterSPIFFEIDs (SQLite), 6 and a ServiceMonitor (Postgres values)");

  const id = (await manifests("spike.yaml")).find((o) => o.kind === "ClusterSPIFFEID")!;
  const crd = crds.get("ClusterSPIFFEID")!;
  const typo = structuredClone(id);
  typo.spec.spiffeIdTemplate = typo.spec.spiffeIDTemplate;
  delete typo.spec.spiffeIDTemplate;
  assert.deepEqual(validateCustomResource(typo, crd), [
    ".spec.spiffeIDTemplate: required",
    ".spec.spiffeIdTemplate: unknown field (the CRD does not define it)",
  ]);
  const wrongType = structuredClone(id);
  wrongType.spec.dnsNameTemplates = "a.example";
  wrongType.spec.podSelector.matchLabels.x = 1;
  assert.deepEqual(validateCustomResource(wrongType, crd).sort(), [
    ".spec.dnsNameTemplates: must be an array",
    ".spec.podSelector.matchLabels.x: must be a string",
  ]);
});

Deno.test("each role's environment resolves through lib/config; Nexus and bootstrap name the per-pod Keeper Services", async () => {
  for (const variant of MANIFEST_VARIANTS) {
    const objects = await manifests(variant.file);
    const keepers = find(objects, "StatefulSet", "spike-keeper");
    const nexus = find(objects, "Deployment", "spike-nexus");
    const job = find(objects, "Job", "spike-bootstrap");

    const keeperEnv = envOf(keepers.spec.template.spec.containers[0]);
    assert.equal(
      resolveKeeperConfig(keeperEnv).listen.port,
      keepers.spec.template.spec.containers[0].ports[0].containerPort,
    );

    // The server roles' memory settings, as lib/config/permissions.ts has them.
    for (const [role, object] of [["keeper", keepers], ["nexus", nexus], ["bootstrap", job]] as const) {
      const env = envOf(object.spec.template.spec.containers[0]);
      const wanted = roleEnvironment(role);
      for (const name of ["MALLOC_MMAP_THRESHOLD_"]) assert.equal(env[name], wanted[name], `${role} ${name}`);
    }

    const nexusConfig = resolveNexusConfig(envOf(nexus.spec.template.spec.containers[0]));
    const bootConfig = resolveBootstrapConfig(envOf(job.spec.template.spec.containers[0]));
    assert.equal(bootConfig.skipIfInitialized, true, "the Job never fails or wipes an initialized deployment");
    assert.equal(bootConfig.force, false);
    assert.deepEqual(bootConfig.keeperPeers, nexusConfig.keeperPeers);
    assert.equal(nexusConfig.keeperPeers.length, keepers.spec.replicas);
    assert.equal(nexusConfig.identity.endpointSocket, "unix:///spiffe-workload-api/spire-agent.sock");

    // Peer i is the Service that selects exactly Keeper pod i, even before it is ready.
    nexusConfig.keeperPeers.forEach((url, i) => {
      const host = new URL(url).hostname;
      assert.equal(host, `spike-keeper-${i}.spike.svc`);
      const service = find(objects, "Service", `spike-keeper-${i}`);
      assert.equal(service.spec.selector["statefulset.kubernetes.io/pod-name"], `spike-keeper-${i}`);
      assert.equal(service.spec.publishNotReadyAddresses, true);
    });
    // Bootstrap reaches Nexus through the Service that includes not-ready pods.
    const admin = find(objects, "Service", new URL(bootConfig.nexusUrl).hostname.split(".")[0]!);
    assert.equal(admin.spec.publishNotReadyAddresses, true);
    assert.deepEqual(admin.spec.selector, nexus.spec.selector.matchLabels);
    assert.equal(find(objects, "Service", "spike-nexus").spec.publishNotReadyAddresses, undefined);

    if (nexusConfig.backendStore === "sqlite") {
      assert.equal(nexus.spec.replicas, 1);
      assert.equal(nexus.spec.strategy.type, "Recreate");
      const claim = nexus.spec.template.spec.volumes.find((v: K8sObject) => v.persistentVolumeClaim);
      find(objects, "PersistentVolumeClaim", claim.persistentVolumeClaim.claimName);
      assert.ok(
        nexus.spec.template.spec.containers[0].volumeMounts.some((m: K8sObject) => m.mountPath === nexusConfig.dataDir),
      );
    } else {
      assert.equal(nexusConfig.backendStore, "postgres");
      assert.equal(nexus.spec.replicas, 2);
      assert.equal(nexusConfig.postgres?.passwordFile, "/etc/spike/postgres/password");
      assert.ok(!objects.some((o) => o.kind === "PersistentVolumeClaim"));
    }
  }
});

Deno.test("ClusterSPIFFEIDs give each role its SPIFFE ID, selecting this release's pods of that role", async () => {
  const objects = await manifests("spike-postgres.yaml");
  const ids = objects.filter((o) => o.kind === "ClusterSPIFFEID");
  const byId = new Map(ids.map((o) => [o.spec.spiffeIDTemplate, o]));
  const expected = {
    nexus: ROLE_PATHS.nexus,
    keeper: ROLE_PATHS.keeper,
    bootstrap: ROLE_PATHS.bootstrap,
    superuser: ROLE_PATHS.pilot_superuser,
    recover: ROLE_PATHS.pilot_recover,
    restore: ROLE_PATHS.pilot_restore,
  };
  assert.deepEqual([...byId.keys()].sort(), Object.values(expected).map((p) => `spiffe://spike.ist${p}`).sort());
  for (const workload of ["StatefulSet/spike-keeper", "Deployment/spike-nexus", "Job/spike-bootstrap"]) {
    const [kind, name] = workload.split("/");
    const labels = find(objects, kind!, name!).spec.template.metadata.labels;
    const matching = ids.filter((id) =>
      Object.entries(id.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v)
    );
    assert.equal(matching.length, 1, `${workload} gets exactly one identity`);
    assert.equal(matching[0]!.spec.spiffeIDTemplate, `spiffe://spike.ist${ROLE_PATHS[name!.slice(6) as "nexus"]}`);
    assert.deepEqual(matching[0]!.spec.namespaceSelector.matchLabels, { "kubernetes.io/metadata.name": "spike" });
  }
  assert.equal(
    byId.get("spiffe://spike.ist/spike/pilot/role/superuser")!.spec.podSelector.matchLabels["spike.ist/pilot-role"],
    "superuser",
  );
  const defaults = (await manifests("spike.yaml")).filter((o) => o.kind === "ClusterSPIFFEID");
  assert.equal(defaults.length, 4, "by default only the superuser operator role is handed out");
});

Deno.test("the operator pod example is valid, gets the superuser identity, and may reach Nexus", async () => {
  const file = join(MANIFESTS_DIR, "examples/operator-pod.yaml");
  const { code, output } = await kubernetesValidate([file], RENDER_KUBERNETES_VERSION);
  assert.equal(code, 0, output);
  assert.match(output, /passed for resource pod\/spike-operator/);
  const [pod] = parseAllDocuments(await Deno.readTextFile(file)).map((d) => d.toJS());
  const objects = await manifests("spike.yaml");
  const labels = pod.metadata.labels;
  const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
  const ids = objects.filter((o) => o.kind === "ClusterSPIFFEID" && selects(o.spec.podSelector.matchLabels));
  assert.deepEqual(ids.map((o) => o.spec.spiffeIDTemplate), ["spiffe://spike.ist/spike/pilot/role/superuser"]);
  const ingress = find(objects, "NetworkPolicy", "spike-nexus").spec.ingress[0].from;
  assert.ok(
    ingress.some((peer: K8sObject) =>
      peer.podSelector && !peer.namespaceSelector && selects(peer.podSelector.matchLabels)
    ),
  );
  const config = resolvePilotConfig(envOf(pod.spec.containers[0]));
  assert.equal(config.nexusUrl, "https://spike-nexus-admin.spike.svc:8553");
  find(objects, "Service", "spike-nexus-admin");
});

Deno.test("every pod: non-root, read-only root, no capabilities, RuntimeDefault seccomp, limits, probes", async () => {
  for (const variant of MANIFEST_VARIANTS) {
    for (const object of await manifests(variant.file)) {
      if (!["StatefulSet", "Deployment", "Job"].includes(object.kind)) continue;
      const pod = podSpecOf(object);
      const what = `${variant.file} ${object.kind}/${object.metadata.name}`;
      assert.equal(pod.automountServiceAccountToken, false, what);
      assert.equal(pod.securityContext.runAsNonRoot, true, what);
      assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault", what);
      assert.ok(pod.volumes.some((v: K8sObject) => v.csi?.driver === "csi.spiffe.io" && v.csi.readOnly), what);
      for (const container of pod.containers) {
        const sc = container.securityContext;
        assert.deepEqual(
          [sc.runAsNonRoot, sc.readOnlyRootFilesystem, sc.allowPrivilegeEscalation, sc.privileged, sc.capabilities],
          [true, true, false, false, { drop: ["ALL"] }],
          what,
        );
        assert.equal(sc.seccompProfile.type, "RuntimeDefault", what);
        for (const kind of ["requests", "limits"]) {
          assert.ok(container.resources[kind].cpu && container.resources[kind].memory, `${what} ${kind}`);
        }
        if (object.kind !== "Job") {
          assert.equal(container.livenessProbe.httpGet.path, "/health", what);
          assert.equal(container.readinessProbe.httpGet.path, "/ready", what);
          assert.equal(container.readinessProbe.httpGet.scheme, "HTTPS", what);
        }
      }
    }
  }
});

Deno.test("network policies: only Nexus and bootstrap reach Keepers; only workloads, bootstrap and operators reach Nexus", async () => {
  const objects = await manifests("spike-postgres.yaml");
  const component = (peer: K8sObject) => peer.podSelector?.matchLabels?.["app.kubernetes.io/component"];
  const keeper = find(objects, "NetworkPolicy", "spike-keeper");
  assert.deepEqual(keeper.spec.policyTypes, ["Ingress", "Egress"]);
  assert.deepEqual(keeper.spec.ingress.flatMap((r: K8sObject) => r.from.map(component)), ["nexus", "bootstrap"]);
  assert.deepEqual(keeper.spec.egress, [], "Keepers dial out to nothing");

  const nexus = find(objects, "NetworkPolicy", "spike-nexus");
  const from = nexus.spec.ingress.flatMap((r: K8sObject) => r.from);
  assert.deepEqual(from.slice(0, 2).map(component), ["bootstrap", "pilot"]);
  assert.deepEqual(from[2], {
    namespaceSelector: {},
    podSelector: { matchLabels: { "spike.ist/client": "true" } },
  });
  assert.deepEqual(from[3], { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } });
  assert.equal(from.length, 4);
  const egressPorts = nexus.spec.egress.flatMap((r: K8sObject) => r.ports.map((p: K8sObject) => p.port));
  assert.deepEqual(egressPorts, [8443, 53, 53, 5432], "Keepers, DNS, the database");

  const bootstrap = find(objects, "NetworkPolicy", "spike-bootstrap");
  assert.deepEqual(bootstrap.spec.ingress, []);

  const keeperPdb = find(objects, "PodDisruptionBudget", "spike-keeper");
  assert.equal(keeperPdb.spec.minAvailable, 2, "never fewer than the threshold of Keepers");
  assert.equal(keeperPdb.spec.unhealthyPodEvictionPolicy, "AlwaysAllow");
  assert.equal(find(objects, "PodDisruptionBudget", "spike-nexus").spec.maxUnavailable, 1);
  const monitor = find(objects, "ServiceMonitor", "spike-nexus");
  assert.deepEqual(
    monitor.spec.selector.matchLabels,
    find(objects, "Deployment", "spike-nexus").spec.selector.matchLabels,
  );
});
