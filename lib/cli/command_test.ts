import assert from "node:assert/strict";
import { type CommandContext, type CommandSpec, helpText, runCommand } from "./command.ts";
import { CliError, UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** An in-memory CliIo that records what a command writes. */
function memoryIo(): CliIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    stdout(text: string) {
      io.out += text;
    },
    stdoutBytes(bytes: Uint8Array) {
      io.out += new TextDecoder().decode(bytes);
      return Promise.resolve();
    },
    stderr(text: string) {
      io.err += text;
    },
    readStdin: () => Promise.resolve(new Uint8Array(0)),
    readLine: () => Promise.resolve(null),
    readHiddenLine: (_prompt: string) => Promise.resolve(null),
    readHiddenText: (_prompt: string) => Promise.resolve(new Uint8Array(0)),
    stdinStream: () => new ReadableStream<Uint8Array>({ start: (controller) => controller.close() }),
    stdinIsTerminal: () => false,
    stdoutIsTerminal: () => false,
    env: {},
  };
  return io;
}

function tree(run: (context: CommandContext) => Promise<number>): CommandSpec {
  return {
    name: "tool",
    summary: "tool — a test tree",
    subcommands: [
      {
        name: "thing",
        summary: "Things",
        subcommands: [
          {
            name: "do",
            summary: "Do a thing",
            args: "<path> [more...]",
            details: "Extra words about doing.",
            positionals: { min: 1, max: 2 },
            options: {
              format: { type: "string", short: "f", description: "Output format", valueName: "fmt" },
              yes: { type: "boolean", short: "y", description: "Do not ask" },
              tag: { type: "string", multiple: true, description: "A tag (repeatable)", valueName: "t" },
            },
            run,
          },
        ],
      },
    ],
  };
}

Deno.test("runCommand walks subcommands and hands the command its parsed flags and positionals", async () => {
  let seen: CommandContext | undefined;
  const root = tree((context) => {
    seen = context;
    return Promise.resolve(0);
  });
  const io = memoryIo();
  const code = await runCommand(root, ["thing", "do", "p", "-f", "json", "--yes", "--tag", "a", "--tag", "b", "q"], io);
  assert.equal(code, 0);
  assert.deepEqual(seen!.positionals, ["p", "q"]);
  assert.equal(seen!.options.format, "json");
  assert.equal(seen!.options.yes, true);
  assert.deepEqual(seen!.options.tag, ["a", "b"]);
  assert.equal(io.err, "");
});

Deno.test("runCommand: --help and -h print the help on stdout and exit 0 without running", async () => {
  let ran = false;
  const root = tree(() => {
    ran = true;
    return Promise.resolve(0);
  });
  for (const argv of [["--help"], ["thing", "-h"], ["thing", "do", "--help"], ["thing", "do", "p", "-h"]]) {
    const io = memoryIo();
    assert.equal(await runCommand(root, argv, io), 0, argv.join(" "));
    assert.match(io.out, /Usage: tool/);
    assert.equal(io.err, "");
  }
  assert.equal(ran, false);
});

Deno.test("runCommand: words after -- are positionals, even --help (a wrapped command's own flags)", async () => {
  let seen: CommandContext | undefined;
  const root = tree((context) => {
    seen = context;
    return Promise.resolve(0);
  });
  const io = memoryIo();
  assert.equal(await runCommand(root, ["thing", "do", "--yes", "--", "ls", "--help"], io), 0);
  assert.deepEqual(seen!.positionals, ["ls", "--help"]);
  assert.equal(seen!.options.yes, true);
  assert.equal(io.out, "");
});

Deno.test("runCommand: usage errors print the command's help on stderr and exit 2", async () => {
  const root = tree(() => Promise.resolve(0));
  const cases: Array<[string[], RegExp]> = [
    [[], /tool: a subcommand is required/],
    [["nope"], /tool: unknown command 'nope'/],
    [["thing"], /tool thing: a subcommand is required/],
    [["thing", "undo"], /tool thing: unknown command 'undo'/],
    [["thing", "--bogus"], /tool thing: unknown option '--bogus'/],
    [["thing", "do", "p", "--bogus"], /tool thing do: unknown option '--bogus'/],
    [["thing", "do"], /tool thing do: missing argument/],
    [["thing", "do", "a", "b", "c"], /tool thing do: unexpected argument 'c'/],
    [["thing", "do", "p", "--format"], /tool thing do: /],
    [["thing", "do", "p", "--yes=no"], /tool thing do: /],
  ];
  for (const [argv, message] of cases) {
    const io = memoryIo();
    assert.equal(await runCommand(root, argv, io), 2, argv.join(" "));
    assert.match(io.err, message);
    assert.match(io.err, /Usage: tool/);
    assert.equal(io.out, "");
  }
});

Deno.test("runCommand maps errors thrown by a command to messages and exit codes", async () => {
  const cases: Array<[unknown, number, RegExp]> = [
    [new UsageError("give a path"), 2, /^tool thing do: give a path\n\n.*Usage:/s],
    [new CliError("not found", 3), 3, /^tool thing do: not found\n$/],
    [new CliError("refused"), 1, /^tool thing do: refused\n$/],
    [new Error("boom"), 1, /^tool thing do: unexpected error: boom\n$/],
  ];
  for (const [error, code, message] of cases) {
    const io = memoryIo();
    const root = tree(() => Promise.reject(error));
    assert.equal(await runCommand(root, ["thing", "do", "p"], io), code);
    assert.match(io.err, message);
  }
  const io = memoryIo();
  assert.equal(await runCommand(tree(() => Promise.resolve(7)), ["thing", "do", "p"], io), 7);
});

Deno.test("helpText lists subcommands, options with placeholders, and --help", () => {
  const root = tree(() => Promise.resolve(0));
  const group = helpText([root, root.subcommands![0]!]);
  assert.match(group, /^tool thing — Things\n/);
  assert.match(group, /Usage: tool thing <command> \[options\]/);
  assert.match(group, /Commands:\n {2}do {2}Do a thing/);
  assert.match(group, /Run 'tool thing <command> --help'/);
  const leaf = helpText([root, root.subcommands![0]!, root.subcommands![0]!.subcommands![0]!]);
  assert.match(leaf, /Usage: tool thing do \[options\] <path> \[more\.\.\.\]/);
  assert.match(leaf, /Extra words about doing\./);
  assert.match(leaf, /-f, --format <fmt> +Output format/);
  assert.match(leaf, /-y, --yes +Do not ask/);
  assert.match(leaf, / {4}--tag <t> +A tag/);
  assert.match(leaf, /-h, --help +Show this help/);
  assert.match(helpText([root]), /^tool — a test tree\n/);
});

Deno.test("runCommand: --version and -V alone at the root print the version line; anywhere else they are usage errors", async () => {
  let ran = false;
  const root: CommandSpec = {
    ...tree(() => {
      ran = true;
      return Promise.resolve(0);
    }),
    version: "tool 1.2.3",
  };
  for (const flag of ["--version", "-V"]) {
    const io = memoryIo();
    assert.equal(await runCommand(root, [flag], io), 0);
    assert.deepEqual([io.out, io.err], ["tool 1.2.3\n", ""]);
  }
  const extra = memoryIo();
  assert.equal(await runCommand(root, ["--version", "now"], extra), 2);
  assert.equal(extra.out, "");
  const below = memoryIo();
  assert.equal(await runCommand(root, ["thing", "do", "p", "--version"], below), 2, "not an option of 'do'");
  assert.match(below.err, /--version/);
  assert.equal(ran, false);
  const help = memoryIo();
  await runCommand(root, ["--help"], help);
  assert.match(help.out, /-V, --version +Show the version/);
});

Deno.test("runCommand: a mistyped subcommand or long flag gets a 'did you mean' on stderr and exit 2", async () => {
  const root = tree(() => Promise.resolve(0));
  const cases: Array<[string[], RegExp]> = [
    [["thnig", "do", "x"], /^tool: unknown command 'thnig'; did you mean 'thing'\?\n/],
    [["thing", "od", "x"], /^tool thing: unknown command 'od'; did you mean 'do'\?\n/],
    [
      ["thing", "do", "x", "--fromat", "json"],
      /^tool thing do: unknown option '--fromat'; did you mean '--format'\?\n/,
    ],
    [["thing", "--hlep"], /^tool thing: unknown option '--hlep'; did you mean '--help'\?\n/],
  ];
  for (const [argv, message] of cases) {
    const io = memoryIo();
    assert.equal(await runCommand(root, argv, io), 2, argv.join(" "));
    assert.match(io.err, message);
    assert.equal(io.out, "");
  }
  // Nothing close: no guess, just the help.
  const io = memoryIo();
  assert.equal(await runCommand(root, ["zzzzzz"], io), 2);
  assert.match(io.err, /^tool: unknown command 'zzzzzz'\n\n/);
});
