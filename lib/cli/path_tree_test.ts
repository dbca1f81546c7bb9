import assert from "node:assert/strict";
import { drawTree, oneLevel } from "./path_tree.ts";

const PATHS = ["apps/billing/api", "apps/billing/db", "apps/web", "apps/web/tls", "ops/key", "zeta"];

Deno.test("oneLevel: the next component below a folder; sub-folders end in /", () => {
  assert.deepEqual(oneLevel(PATHS, ""), ["apps/", "ops/", "zeta"]);
  assert.deepEqual(oneLevel(PATHS, "apps/"), ["apps/billing/", "apps/web", "apps/web/"]);
  assert.deepEqual(oneLevel(PATHS, "apps/billing/"), ["apps/billing/api", "apps/billing/db"]);
  assert.deepEqual(oneLevel(PATHS, "nope/"), []);
  assert.deepEqual(oneLevel(["a/", "a/b"], "a/"), ["a/b"], "the folder itself is not its own entry");
});

Deno.test("drawTree: folders and secrets with box-drawing lines", () => {
  assert.equal(
    drawTree(PATHS, ""),
    [
      ".",
      "├── apps/",
      "│   ├── billing/",
      "│   │   ├── api",
      "│   │   └── db",
      "│   ├── web",
      "│   └── web/",
      "│       └── tls",
      "├── ops/",
      "│   └── key",
      "└── zeta",
      "",
    ].join("\n"),
  );
  assert.equal(drawTree(PATHS, "apps/billing/"), "apps/billing/\n├── api\n└── db\n");
  assert.equal(drawTree([], "x/"), "x/\n");
});
