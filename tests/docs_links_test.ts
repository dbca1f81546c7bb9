/**
 * What a user reads never points outside their clone: every relative link
 * in README.md and docs/*.md names a file of the repository (and a heading
 * of it, when the link has a #fragment), and no help text mentions a path
 * above the repository.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type CommandSpec, helpText } from "../lib/cli/command.ts";
import { spikeCommand } from "../cmd/spike.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

async function markdownFiles(): Promise<string[]> {
  const files = [join(REPO, "README.md")];
  for await (const entry of Deno.readDir(join(REPO, "docs"))) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(join(REPO, "docs", entry.name));
  }
  return files.sort();
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

/** Link targets outside code blocks and code spans. */
function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

Deno.test("README.md and docs/*.md: every relative link resolves to a file (and heading) in the repository", async () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of await markdownFiles()) {
    for (const target of linkTargets(await Deno.readTextFile(file))) {
      if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
      checked++;
      const [pathPart, fragment] = target.split("#", 2) as [string, string | undefined];
      const resolved = pathPart === "" ? file : resolve(dirname(file), decodeURIComponent(pathPart));
      const where = `${relative(REPO, file)}: (${target})`;
      if (relative(REPO, resolved).startsWith("..")) {
        problems.push(`${where} points outside the repository`);
        continue;
      }
      let text: string;
      try {
        text = (await Deno.stat(resolved)).isFile && resolved.endsWith(".md") ? await Deno.readTextFile(resolved) : "";
      } catch {
        problems.push(`${where} names a missing file`);
        continue;
      }
      if (fragment !== undefined && resolved.endsWith(".md")) {
        const headings = [...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!));
        if (!headings.includes(fragment)) problems.push(`${where} names a missing heading`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 10, `only ${checked} links checked: is the link pattern still right?`);
});

Deno.test("help texts name no path above the repository", () => {
  const offenders: string[] = [];
  const visit = (path: CommandSpec[]) => {
    const text = helpText(path);
    if (/\.\.\/|\/work\/|shared\//.test(text)) offenders.push(path.map((c) => c.name).join(" "));
    for (const child of path.at(-1)!.subcommands ?? []) visit([...path, child]);
  };
  visit([spikeCommand]);
  assert.deepEqual(offenders, []);
});
