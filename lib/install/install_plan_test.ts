import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import {
  denoInstallArgs,
  denoUninstallArgs,
  installLayout,
  PINNED_DENO_VERSION,
  shellWord,
  SPIKE_RUN_FLAGS,
} from "./install_plan.ts";

Deno.test("SPIKE_RUN_FLAGS: the installed command runs with the same flags as 'deno task spike' and 'deno task dev'", () => {
  for (const task of ["spike", "dev"] as const) {
    const words = denoJson.tasks[task].split(" ");
    const flags = words.filter((word) => word.startsWith("--"));
    assert.deepEqual([...flags].sort(), [...SPIKE_RUN_FLAGS].sort(), task);
  }
});

Deno.test("installLayout: --root, then DENO_INSTALL_ROOT, then ~/.deno; HOME needed only for the default", () => {
  assert.equal(installLayout("/opt/x", { HOME: "/h", DENO_INSTALL_ROOT: "/d" }).shim, "/opt/x/bin/spike");
  assert.equal(installLayout(undefined, { HOME: "/h", DENO_INSTALL_ROOT: "/d" }).binDir, "/d/bin");
  const layout = installLayout(undefined, { HOME: "/h" });
  assert.deepEqual(layout, {
    root: "/h/.deno",
    binDir: "/h/.deno/bin",
    shim: "/h/.deno/bin/spike",
    configDir: "/h/.deno/bin/.spike",
  });
  assert.throws(() => installLayout(undefined, {}), /give --root/);
});

Deno.test("denoInstallArgs: global, frozen, the repository's config, the run flags, cmd/spike.ts", () => {
  const args = denoInstallArgs("/repo", installLayout("/r", {}));
  assert.deepEqual(args.slice(0, 10), [
    "install",
    "--global",
    "--quiet",
    "--root",
    "/r",
    "--name",
    "spike",
    "--config",
    "/repo/deno.json",
    "--frozen",
  ]);
  assert.deepEqual(args.slice(10, -1), [...SPIKE_RUN_FLAGS]);
  assert.equal(args.at(-1), "/repo/cmd/spike.ts");
  assert.deepEqual(denoUninstallArgs(installLayout("/r", {})), [
    "uninstall",
    "--global",
    "--quiet",
    "--root",
    "/r",
    "spike",
  ]);
});

Deno.test("PINNED_DENO_VERSION: the README's npx commands pin the same version", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const pins = [...readme.matchAll(/npx --yes deno@([0-9.]+)/g)].map((m) => m[1]);
  assert.ok(pins.length >= 2);
  for (const pin of pins) assert.equal(pin, PINNED_DENO_VERSION);
});

Deno.test("shellWord: plain words stay, anything else is single-quoted", () => {
  assert.equal(shellWord("/home/u/.deno/bin"), "/home/u/.deno/bin");
  assert.equal(shellWord("/home/my dir"), "'/home/my dir'");
  assert.equal(shellWord("it's"), `'it'\\''s'`);
});
