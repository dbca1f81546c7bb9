import assert from "node:assert/strict";
import { findOnPath, isOnPath, isTransientDir, lastingPathDirs } from "./path_lookup.ts";

Deno.test("isTransientDir: npx's per-command directories, nothing else", () => {
  assert.ok(isTransientDir("/home/u/.npm/_npx/9a44b51413a06805/node_modules/.bin"));
  assert.ok(isTransientDir("/work/project/node_modules/.bin"));
  assert.ok(!isTransientDir("/home/u/.deno/bin"));
  assert.ok(!isTransientDir("/usr/bin"));
});

Deno.test("lastingPathDirs / isOnPath: empty and npx entries dropped, trailing slashes ignored", () => {
  const path = "/home/u/.npm/_npx/1/node_modules/.bin::/home/u/.deno/bin/:/usr/bin";
  assert.deepEqual(lastingPathDirs(path), ["/home/u/.deno/bin", "/usr/bin"]);
  assert.ok(isOnPath("/home/u/.deno/bin", path));
  assert.ok(isOnPath("/home/u/.deno/bin/", path));
  assert.ok(!isOnPath("/home/u/.npm/_npx/1/node_modules/.bin", path));
  assert.ok(!isOnPath("/opt/bin", undefined));
});

Deno.test("findOnPath: the first lasting directory holding the executable", () => {
  const files = new Set(["/home/u/.npm/_npx/1/node_modules/.bin/deno", "/opt/deno/bin/deno", "/usr/bin/deno"]);
  const isExecutable = (path: string) => files.has(path);
  assert.equal(
    findOnPath("deno", "/home/u/.npm/_npx/1/node_modules/.bin:/opt/deno/bin:/usr/bin", isExecutable),
    "/opt/deno/bin/deno",
  );
  assert.equal(findOnPath("deno", "/home/u/.npm/_npx/1/node_modules/.bin", isExecutable), undefined);
  assert.equal(findOnPath("spike", "/usr/bin", isExecutable), undefined);
});
