/**
 * Runs a command on a pseudo-terminal with `script` (util-linux), for tests
 * of what the CLI does when a person sits at a terminal: prompts without
 * echo, a newline after a value printed alone.
 *
 * @module
 */

/** Whether `script` is installed (tests that need a terminal are skipped without it). */
export async function hasScript(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

/** What a command wrote to its terminal, and how it ended. */
export interface PtyResult {
  /** Everything that appeared on the terminal (stdout and stderr of the command, and any echo). */
  readonly screen: string;
  /** The command's exit code (`script -e` passes it on). */
  readonly code: number;
}

/** One step of typing: once `when` appears on the screen, type `keys`. */
export interface PtyInput {
  /** Text to wait for on the screen. */
  readonly when: string;
  /** Bytes to type (`\r` is Enter, `\x04` Ctrl-D, `\x7f` Backspace). */
  readonly keys: string;
}

/**
 * Runs `argv` on a terminal with `env`, types `inputs` in order as their
 * cues appear, and returns the screen. Killed after `timeoutMs`.
 */
export async function runOnTerminal(
  argv: readonly string[],
  env: Record<string, string>,
  inputs: readonly PtyInput[] = [],
  timeoutMs = 60_000,
): Promise<PtyResult> {
  const command = argv.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-q", "-e", "-c", command, "/dev/null"],
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  const writer = child.stdin.getWriter();
  const pending = [...inputs];
  let screen = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  try {
    if (pending.length === 0) await writer.close();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      screen += decoder.decode(value, { stream: true });
      while (pending.length > 0 && screen.includes(pending[0]!.when)) {
        await writer.write(new TextEncoder().encode(pending.shift()!.keys));
        if (pending.length === 0) await writer.close();
      }
    }
    screen += await new Response(child.stderr).text();
    return { screen, code: (await child.status).code };
  } finally {
    clearTimeout(timer);
  }
}
