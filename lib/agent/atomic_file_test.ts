import assert from "node:assert/strict";
import { join } from "node:path";
import { realFiles, writeFileAtomic } from "./atomic_file.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("writeFileAtomic: creates directories, sets the mode whatever the umask, replaces by rename", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "nested", "db.env");
    await writeFileAtomic(path, bytes("one"), { mode: 0o640 });
    assert.equal(await Deno.readTextFile(path), "one");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    const before = (await Deno.stat(path)).ino;
    await writeFileAtomic(path, bytes("two"), { mode: 0o600 });
    assert.equal(await Deno.readTextFile(path), "two");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.notEqual((await Deno.stat(path)).ino, before, "a new inode: replaced, not rewritten in place");
    const left = [...Deno.readDirSync(join(dir, "nested"))].map((e) => e.name);
    assert.deepEqual(left, ["db.env"], "no temporary file left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic: a failed write leaves the destination as it was and no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A destination that is a non-empty directory makes the final rename fail, for any user.
    const target = join(dir, "is_dir");
    await Deno.writeTextFile(join(dir, "is_dir.keep"), "");
    await Deno.mkdir(join(target, "child"), { recursive: true });
    await assert.rejects(writeFileAtomic(target, bytes("bad"), { mode: 0o600 }));
    assert.ok((await Deno.stat(join(target, "child"))).isDirectory);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["is_dir", "is_dir.keep"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("realFiles: read gives bytes and mode, or undefined; remove tolerates a missing file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "f");
    assert.equal(await realFiles.read(path), undefined);
    await realFiles.write(path, bytes("x"), { mode: 0o604 });
    const existing = await realFiles.read(path);
    assert.deepEqual([new TextDecoder().decode(existing!.bytes), existing!.mode], ["x", 0o604]);
    await realFiles.remove(path);
    await realFiles.remove(path);
    assert.equal(await realFiles.read(path), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "writeFileAtomic: sets a numeric owner (needs root)",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "owned");
      await writeFileAtomic(path, bytes("x"), { mode: 0o640, owner: { uid: 65534, gid: 65533 } });
      const info = await Deno.stat(path);
      assert.deepEqual([info.uid, info.gid, info.mode! & 0o777], [65534, 65533, 0o640]);
      await writeFileAtomic(path, bytes("y"), { mode: 0o600, owner: { uid: 65532 } });
      const again = await Deno.stat(path);
      assert.deepEqual([again.uid, again.gid], [65532, Deno.gid()], "gid left to the default when not given");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
