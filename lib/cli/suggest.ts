/**
 * "Did you mean …?" for mistyped subcommands and flags: the candidates
 * within a small edit distance (a swapped pair of letters counts as one
 * edit, the commonest typo).
 *
 * @module
 */

/**
 * Edit distance between `a` and `b` counting insertions, deletions,
 * substitutions and swaps of two neighbouring characters (optimal string
 * alignment).
 */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  // rows[i][j] = distance between the first i characters of x and the first j of y.
  const rows: number[][] = Array.from({ length: x.length + 1 }, (_, i) => [i, ...new Array<number>(y.length).fill(0)]);
  for (let j = 0; j <= y.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= x.length; i++) {
    const row = rows[i]!;
    const above = rows[i - 1]!;
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let best = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) {
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      }
      row[j] = best;
    }
  }
  return rows[x.length]![y.length]!;
}

/**
 * The candidates `input` was most likely meant to be, closest first: those
 * within a third of the input's length in edits (at least one), or starting
 * with it when it is at least two characters long. Empty when nothing is close.
 */
export function suggestions(input: string, candidates: readonly string[]): string[] {
  const limit = Math.max(1, Math.floor([...input].length / 3));
  const scored = candidates
    .filter((candidate) => candidate !== input)
    .map((candidate) => ({ candidate, distance: editDistance(input.toLowerCase(), candidate.toLowerCase()) }))
    .filter(({ candidate, distance }) => distance <= limit || ([...input].length >= 2 && candidate.startsWith(input)));
  if (scored.length === 0) return [];
  const best = Math.min(...scored.map((s) => s.distance));
  // Prefixes are offered as a group; otherwise only the closest ones.
  return scored
    .filter(({ candidate, distance }) => distance === best || candidate.startsWith(input))
    .sort((p, q) => p.distance - q.distance || (p.candidate < q.candidate ? -1 : 1))
    .map(({ candidate }) => candidate);
}

/** The sentence to print, e.g. ` (did you mean 'secret'?)`, or `""` when there is nothing to suggest. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const found = suggestions(input, candidates);
  if (found.length === 0) return "";
  const quoted = found.slice(0, 3).map((c) => `'${c}'`);
  const list = quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
  return `; did you mean ${list}?`;
}
