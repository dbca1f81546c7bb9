/**
 * Small file-system questions the test support asks.
 *
 * @module
 */

/** Whether anything exists at `path` (a dangling or unreadable path counts as missing). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
