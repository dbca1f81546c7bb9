/**
 * `spike operator restore` on a terminal asks for the shard without echoing
 * it. Runs the real CLI under a pseudo-terminal (`script` from util-linux).
 */
import assert from "node:assert/strict";
import { freePort, runSpike, SPIKE_MAIN, TEST_DENO_FLAGS } from "./support/process.ts";

const SHARD = `spike:1:${"ab".repeat(32)}`;

async function hasScript(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "operator restore hides the shard typed at a terminal prompt",
  ignore: !await hasScript(),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const minted = await runSpike([
        "dev",
        "identity",
        "spiffe://spike.ist/spike/pilot/role/restore",
        "--dir",
        `${dir}/ca`,
        "--out",
        `${dir}/id`,
      ]);
      assert.equal(minted.code, 0, minted.stderr);
      const command = [Deno.execPath(), "run", ...TEST_DENO_FLAGS, SPIKE_MAIN, "operator", "restore"]
        .map((word) => `'${word}'`).join(" ");
      const child = new Deno.Command("script", {
        args: ["-q", "-e", "-c", command, "/dev/null"],
        env: {
          SPIKE_SVID_DIR: `${dir}/id`,
          // Nothing listens here: the command must get as far as connecting.
          SPIKE_NEXUS_API_URL: `https://127.0.0.1:${freePort()}`,
          NO_COLOR: "1",
        },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      // Type only once the prompt shows: it appears after echo is off.
      let screen = "";
      const reader = child.stdout.getReader();
      const writer = child.stdin.getWriter();
      let typed = false;
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        screen += new TextDecoder().decode(value);
        if (!typed && screen.includes("input is hidden")) {
          typed = true;
          await writer.write(new TextEncoder().encode(`${SHARD}\r`));
          await writer.close();
        }
      }
      screen += await new Response(child.stderr).text();
      const status = await child.status;
      clearTimeout(timer);
      assert.match(screen, /Enter a recovery shard \(input is hidden\)/);
      assert.ok(!screen.includes("abab"), `the shard was echoed:\n${screen}`);
      assert.match(screen, /connection refused/);
      assert.notEqual(status.code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
