/**
 * The completion scripts parse in their shells (`bash -n`, `zsh -n`,
 * `fish -n`) and complete what the command tree holds: bash through its
 * completion function with COMP_WORDS set, fish through `complete -C`, zsh
 * through its function with the completion builtins stood in for (only a
 * running line editor has the real ones).
 */
import assert from "node:assert/strict";
import { spikeCommand } from "../../cmd/spike.ts";
import type { CommandSpec } from "./command.ts";
import { completionScript, type CompletionShell } from "./completions.ts";

async function hasShell(shell: string): Promise<boolean> {
  try {
    return (await new Deno.Command(shell, { args: ["-c", "exit 0"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

const available: Record<CompletionShell, boolean> = {
  bash: await hasShell("bash"),
  zsh: await hasShell("zsh"),
  fish: await hasShell("fish"),
};
for (const shell of ["zsh", "fish"] as const) {
  if (!available[shell]) console.warn(`completions_test: ${shell} is not installed; its checks are skipped`);
}

/** Runs `script` in `shell` with the completion script at $SCRIPT; returns stdout (asserting success). */
async function run(shell: CompletionShell, completion: string, script: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "spike-completions-" });
  try {
    const file = `${dir}/spike.${shell}`;
    await Deno.writeTextFile(file, completion);
    const args = shell === "bash"
      ? ["--noprofile", "--norc", "-c", script]
      : shell === "zsh"
      ? ["-f", "-c", script]
      : ["--no-config", "-c", script];
    const output = await new Deno.Command(shell, {
      args,
      cwd: dir,
      env: { SCRIPT: file, HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `${shell} failed:\n${stderr}`);
    return new TextDecoder().decode(output.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A tree with a command added "later", to show completion follows the tree. */
const grownTree: CommandSpec = {
  ...spikeCommand,
  subcommands: [
    ...spikeCommand.subcommands!,
    {
      name: "mirror",
      summary: "Mirror secrets to files",
      options: {
        mode: { type: "string", description: "How to render", choices: ["file", "env"] },
        once: { type: "boolean", description: "Render once and exit" },
      },
      run: () => Promise.resolve(0),
    },
  ],
};

Deno.test("completions: every script passes its shell's syntax check (-n)", async (t) => {
  for (const shell of ["bash", "zsh", "fish"] as const) {
    await t.step({
      name: `${shell} -n`,
      ignore: !available[shell],
      fn: async () => {
        await run(shell, completionScript(spikeCommand, shell), `${shell} -n "$SCRIPT"`);
      },
    });
  }
});

const BASH_PROBE = `source "$SCRIPT"
probe() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _spike; echo "\${COMPREPLY[*]}"; }
`;

Deno.test("completions: bash completes subcommands, flags and flag values along the command path", async () => {
  const out = await run(
    "bash",
    completionScript(grownTree, "bash"),
    BASH_PROBE + [
      "probe spike se",
      'probe spike secret ""',
      "probe spike secret metadata g",
      "probe spike secret get app/db --f",
      'probe spike secret get -f ""',
      "probe spike secret get --format j",
      "probe spike secret get --format = y",
      "probe spike dev --keeper",
      "probe spike mi",
      'probe spike mirror --mode ""',
      "probe spike mirror --o",
      "probe spike --vers",
      "probe spike secret get app/db put", // a positional ends the command path: no subcommands there
    ].join("\n"),
  );
  assert.deepEqual(out.split("\n").slice(0, -1), [
    "secret",
    "put patch get get-many delete undelete destroy list move metadata",
    "get",
    "--format",
    "human json yaml env",
    "json",
    "yaml",
    "--keeper-ports --keeper-update-interval",
    "mirror",
    "file env",
    "--once",
    "--version",
    "",
  ]);
});

Deno.test({
  name: "completions: fish completes subcommands with their summaries, flags and values (complete -C)",
  ignore: !available.fish,
  fn: async () => {
    const out = await run(
      "fish",
      completionScript(grownTree, "fish"),
      `source "$SCRIPT"
for line in 'spike sec' 'spike secret metadata ' 'spike secret get app --f' 'spike secret get -f ' 'spike mi' 'spike mirror --mode '
  echo "[$line]"
  complete -C "$line"
end`,
    );
    // "[line]" headers, each followed by what fish offers for that line.
    const sections: Record<string, string> = {};
    let current = "";
    for (const line of out.split("\n")) {
      const header = /^\[(.*)\]$/.exec(line);
      if (header) sections[current = header[1]!] = "";
      else if (line !== "") sections[current] += (sections[current] ? "\n" : "") + line;
    }
    const words = (text: string | undefined) => (text ?? "").split("\n").map((l) => l.split("\t")[0]).sort();
    assert.equal(sections["spike sec"], "secret\tRead and write secrets");
    assert.equal(
      sections["spike secret metadata "],
      [
        "delete\tRemove a secret with every version and its metadata, for good (asks first unless --yes)",
        "get\tShow versions and timestamps of a secret",
        "put\tSet a secret's custom metadata or expiry (no new version)",
      ].join("\n"),
    );
    assert.equal(sections["spike secret get app --f"], "--format\tOutput format: human, json, yaml or env");
    assert.deepEqual(words(sections["spike secret get -f "]), [
      "env",
      "human",
      "json",
      "yaml",
    ]);
    assert.equal(sections["spike mi"], "mirror\tMirror secrets to files");
    assert.deepEqual(words(sections["spike mirror --mode "]), [
      "env",
      "file",
    ]);
  },
});

Deno.test({
  name: "completions: zsh finds the command path and offers its subcommands, flags and values",
  ignore: !available.zsh,
  fn: async () => {
    const out = await run(
      "zsh",
      completionScript(grownTree, "zsh"),
      // Stand-ins for the builtins only a running line editor has: print what would be offered.
      `compdef() { :; }
source "$SCRIPT"
_describe() { local -a entries; entries=("\${(@P)4}"); print -r -- "\${(j: :)\${(@)entries%%:*}}"; }
compadd() { shift; print -r -- "\${(j: :)\${(@P)1}}"; }
_files() { print FILES; }
compset() { :; }
probe() { words=("$@"); CURRENT=$#words; _spike; }
probe spike secret ""
probe spike secret metadata ""
probe spike secret get -f ""
probe spike mirror --m
probe spike mirror --mode ""
probe spike secret get app ""`,
    );
    assert.deepEqual(out.split("\n").slice(0, -1), [
      "put patch get get-many delete undelete destroy list move metadata",
      "get put delete",
      "human json yaml env",
      "--mode --once --help -h",
      "file env",
      "FILES",
    ]);
  },
});

Deno.test("completions: names that a shell would read as code are refused; summaries stay text", async () => {
  const evil: CommandSpec = { name: "spike", summary: "x", subcommands: [{ name: "$(rm -rf ~)", summary: "x" }] };
  for (const shell of ["bash", "zsh", "fish"] as const) {
    assert.throws(() => completionScript(evil, shell), /cannot be completed safely/);
  }
  const summary = `it's "$(echo pwned)" \\ \`id\` done`;
  const quoted: CommandSpec = {
    name: "spike",
    summary: "x",
    subcommands: [{ name: "ok", summary, run: () => Promise.resolve(0) }],
  };
  if (available.fish) {
    const out = await run("fish", completionScript(quoted, "fish"), `source "$SCRIPT"; complete -C 'spike o'`);
    assert.equal(out, `ok\t${summary}\n`);
  }
  if (available.zsh) {
    const out = await run(
      "zsh",
      completionScript(quoted, "zsh"),
      `compdef() { :; }; source "$SCRIPT"; _spike_subcommands ""; print -r -- "\${reply[1]}"`,
    );
    assert.equal(out, `ok:${summary}\n`);
  }
});
