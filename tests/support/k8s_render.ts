/**
 * Renders the Helm chart in deploy/helm/spike/ into the plain manifests in
 * deploy/k8s/ (`deno task k8s:render`), one file per values set. The tests
 * render again and compare, so the checked-in manifests never drift from
 * the chart; `--check` does the same from the command line.
 *
 * @module
 */
import { join } from "node:path";
import { helm } from "./helm.ts";

/** The chart. */
export const CHART_DIR = new URL("../../deploy/helm/spike/", import.meta.url).pathname;
/** Where the rendered manifests live. */
export const MANIFESTS_DIR = new URL("../../deploy/k8s/", import.meta.url).pathname;
/** Kubernetes release the chart is rendered for: its minimum (Chart.yaml kubeVersion). */
export const RENDER_KUBERNETES_VERSION = "1.31.0";

/** One rendered file: its name in deploy/k8s/ and the chart values files (under the chart) it uses. */
export interface ManifestVariant {
  readonly file: string;
  readonly values: readonly string[];
  readonly summary: string;
}

/** Every file in deploy/k8s/. */
export const MANIFEST_VARIANTS: readonly ManifestVariant[] = [
  { file: "spike.yaml", values: [], summary: "default values: Nexus on SQLite" },
  { file: "spike-postgres.yaml", values: ["ci/postgres-values.yaml"], summary: "ci/postgres-values.yaml" },
];

/** `helm template` of the chart as release `spike` in namespace `spike`, with a header naming its source. */
export async function renderManifest(variant: ManifestVariant): Promise<string> {
  const args = ["template", "spike", CHART_DIR, "--namespace", "spike", "--kube-version", RENDER_KUBERNETES_VERSION];
  for (const file of variant.values) args.push("--values", join(CHART_DIR, file));
  const { code, stdout, stderr } = await helm(args);
  if (code !== 0) throw new Error(`helm template failed for ${variant.file}:\n${stderr}`);
  return `# Generated from deploy/helm/spike (${variant.summary}) by \`deno task k8s:render\`; do not edit.\n` +
    `# Release "spike" in namespace "spike". Apply with: kubectl create namespace spike; kubectl apply -f <this file>\n` +
    stdout;
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  let stale = 0;
  for (const variant of MANIFEST_VARIANTS) {
    const path = join(MANIFESTS_DIR, variant.file);
    const rendered = await renderManifest(variant);
    if (check) {
      const current = await Deno.readTextFile(path).catch(() => "");
      if (current !== rendered) {
        console.error(`${path} is stale: run deno task k8s:render`);
        stale++;
      }
    } else {
      await Deno.mkdir(MANIFESTS_DIR, { recursive: true });
      await Deno.writeTextFile(path, rendered);
      console.log(`wrote ${path}`);
    }
  }
  Deno.exit(stale === 0 ? 0 : 1);
}
