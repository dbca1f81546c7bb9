/**
 * The README's "Using it" section, done the way a reader does it: install
 * `spike` with `deno task install` (into a temporary root), start `spike dev`
 * with the installed command (new HOME, empty Deno cache), then run the
 * section's shell block verbatim with bash from another directory. The
 * commands `spike dev` prints when ready must be the README's own lines, and
 * nothing test-only may be downloaded on the way.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { childEnv, freePort, networkEnv, SpikeProcess } from "./support/process.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** The ```sh blocks of the README section titled `title`, in order. */
async function shellBlocks(title: string): Promise<string[]> {
  const readme = await Deno.readTextFile(join(REPO, "README.md"));
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has no '## ${title}' section`);
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Commands of a shell block: continuation lines joined, comments after two spaces dropped. */
function commands(block: string): string[] {
  return block.replaceAll("\\\n", " ").split("\n")
    .map((line) => line.replace(/\s{2,}#.*$/, "").replace(/\s+/g, " ").trim())
    .filter((line) => line !== "");
}

async function run(executable: string, args: string[], options: { cwd: string; env: Record<string, string> }) {
  const output = await new Deno.Command(executable, {
    args,
    cwd: options.cwd,
    env: childEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(180_000),
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

Deno.test("README 'Using it': deno task install, spike dev, then the block verbatim in bash", async () => {
  const [installBlock, usingIt] = await shellBlocks("Using it");
  assert.ok(installBlock && usingIt, "README 'Using it' needs an install block and a usage block");
  assert.match(installBlock, /^npx --yes deno@[\d.]+ task install\b/m);
  assert.match(installBlock, /deno task install/);

  const root = await Deno.makeTempDir({ prefix: "spike-readme-root-" });
  const home = await Deno.makeTempDir({ prefix: "spike-readme-home-" });
  const work = await Deno.makeTempDir({ prefix: "spike-readme-cwd-" });
  const denoDir = await Deno.makeTempDir({ prefix: "spike-readme-deno-dir-" });
  const bin = join(root, "bin");
  let dev: SpikeProcess | undefined;
  try {
    // `deno task install` (the README's line, with --root so the test keeps out of ~/.deno).
    const installed = await run(Deno.execPath(), ["task", "--quiet", "install", "--root", root], {
      cwd: REPO,
      env: {},
    });
    assert.equal(installed.code, 0, installed.stderr);
    assert.ok(installed.stdout.includes(`export PATH=${bin}:"$PATH"`), installed.stdout);

    // The reader's shell after following that advice, with a fresh HOME and an empty Deno cache.
    const user = {
      ...networkEnv(),
      HOME: home,
      PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      DENO_DIR: denoDir,
    };
    const ports = [freePort(), freePort(), freePort(), freePort()];
    dev = new SpikeProcess(
      ["dev", "--nexus-port", String(ports[0]), "--keeper-ports", ports.slice(1).join(",")],
      { executable: join(bin, "spike"), env: user },
    );
    await dev.waitFor(/spike dev: ready/, 240_000);

    // The ready banner's commands are the README's, character for character.
    const banner = dev.output.split("\n");
    const from = banner.findIndex((line) => line.includes("In another terminal:"));
    assert.ok(from >= 0, `no 'In another terminal' in the banner (is spike on PATH?):\n${dev.output}`);
    const bannerCommands = banner.slice(from + 1).filter((line) => line.startsWith("    ")).map((line) => line.trim());
    assert.ok(bannerCommands.length >= 3, dev.output);
    const readmeCommands = commands(usingIt);
    for (const command of bannerCommands) {
      assert.ok(readmeCommands.includes(command), `banner line not in the README block: ${command}`);
    }
    assert.deepEqual(readmeCommands.slice(0, bannerCommands.length), bannerCommands);

    // The block, verbatim, from another directory.
    await Deno.writeTextFile(join(work, "using_it.sh"), usingIt);
    const result = await run("bash", ["-e", "using_it.sh"], { cwd: work, env: user });
    assert.equal(result.code, 0, `README block failed:\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.ok(result.stdout.startsWith("s3cret"), result.stdout); // the value alone, as piped: no newline
    assert.ok(result.stdout.includes("pass='s3cret'\nuser='admin'\n"), result.stdout);
    assert.match(result.stdout, /^web$/m);
    assert.match(result.stderr, /OK: secret app\/db written/);

    // And what `spike dev` printed, pasted as it is.
    await Deno.writeTextFile(join(work, "banner.sh"), bannerCommands.join("\n") + "\n");
    const pasted = await run("bash", ["-e", "banner.sh"], { cwd: work, env: user });
    assert.equal(pasted.code, 0, `banner commands failed:\n${pasted.stderr}`);
    assert.equal(pasted.stdout, "s3cret");

    // Only what the commands import was downloaded: nothing test-only.
    const fetched = [...Deno.readDirSync(join(denoDir, "npm", "registry.npmjs.org"))].map((e) => e.name);
    assert.ok(fetched.includes("hono"), fetched.join(" "));
    for (const testOnly of ["fast-check", "pure-rand"]) {
      assert.ok(!fetched.includes(testOnly), `${testOnly} was downloaded: ${fetched.join(" ")}`);
    }

    const stopped = await dev.stop("SIGTERM");
    dev = undefined;
    assert.equal(stopped.code, 0);
    const removed = await run(Deno.execPath(), ["task", "--quiet", "uninstall", "--root", root], {
      cwd: REPO,
      env: {},
    });
    assert.equal(removed.code, 0, removed.stderr);
  } finally {
    await dev?.stop("SIGTERM");
    for (const dir of [root, home, work, denoDir]) await Deno.remove(dir, { recursive: true });
  }
});
