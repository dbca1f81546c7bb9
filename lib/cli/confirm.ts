/**
 * The yes/no question the destructive commands ask before they act
 * (`policy delete`, `secret destroy`, `secret metadata delete`).
 *
 * @module
 */
import type { CliIo } from "./io.ts";

/** Asks `question` on stderr and reads a line: true for `y` or `yes` (any case). */
export async function confirm(io: CliIo, question: string): Promise<boolean> {
  io.stderr(`${question} [y/N] `);
  const answer = (await io.readLine() ?? "").trim().toLowerCase();
  return answer === "y" || answer === "yes";
}
