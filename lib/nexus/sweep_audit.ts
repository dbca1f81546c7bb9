/**
 * The expiry sweep's audit records [ours] (`audit-sweep`, see `audit.ts`):
 * one intent per group of paths before the sweep changes any of them, and
 * its outcome after. A batch may hold up to 100,000 paths, and a verifier
 * reads lines of at most `MAX_RECORD_LINE` characters, so the lists are
 * cut into groups that keep every line well under that.
 *
 * @module
 */
import { MAX_RECORD_LINE } from "../audit/chain_format.ts";
import { SWEEP_RECORD, type SweepDoneRecord, type SweepIntentRecord } from "./audit.ts";

/**
 * Most characters of list entries (as JSON) one record holds. The rest of
 * a line (time, trail, chain fields, MAC) takes a few hundred, so a line
 * stays far below `MAX_RECORD_LINE`. One entry never exceeds it: a path
 * has at most 500 characters (6 each as JSON escapes), and a path's
 * destroyed versions are at most 1000 numbers.
 */
export const SWEEP_LIST_BUDGET: number = Math.floor(MAX_RECORD_LINE * 0.75);

/** What the sweep did to one group of paths. */
export interface SweepOutcome {
  /** Paths removed with every version. */
  readonly removed: readonly string[];
  /** Versions destroyed, per path. */
  readonly destroyed: ReadonlyArray<{ readonly path: string; readonly versions: readonly number[] }>;
  /** Paths left for the next pass. */
  readonly skipped: readonly string[];
}

/** `items` in order, in groups whose entries take at most `budget` characters as JSON (never an empty group). */
export function groupsWithin<T>(items: readonly T[], budget: number = SWEEP_LIST_BUDGET): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let used = 0;
  for (const item of items) {
    const size = JSON.stringify(item).length + 1;
    if (group.length > 0 && used + size > budget) {
      groups.push(group);
      group = [];
      used = 0;
    }
    group.push(item);
    used += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** The intent record of a group of paths about to be swept. */
export function sweepIntentRecord(trail: string, time: Date, paths: readonly string[]): SweepIntentRecord {
  return { time: time.toISOString(), type: SWEEP_RECORD, trail, phase: "intent", paths: [...paths] };
}

/** The outcome records of a group (one, unless its version lists make it long), sharing the intent's trail. */
export function sweepDoneRecords(
  trail: string,
  time: Date,
  outcome: SweepOutcome,
  budget: number = SWEEP_LIST_BUDGET,
): SweepDoneRecord[] {
  type Entry =
    | { readonly kind: "removed" | "skipped"; readonly path: string }
    | { readonly kind: "destroyed"; readonly path: string; readonly versions: readonly number[] };
  const entries: Entry[] = [
    ...outcome.removed.map((path) => ({ kind: "removed" as const, path })),
    ...outcome.destroyed.map(({ path, versions }) => ({ kind: "destroyed" as const, path, versions })),
    ...outcome.skipped.map((path) => ({ kind: "skipped" as const, path })),
  ];
  // A group that needed nothing still says so: its intent gets an outcome.
  const groups = entries.length === 0 ? [[]] : groupsWithin(entries, budget);
  return groups.map((group) => ({
    time: time.toISOString(),
    type: SWEEP_RECORD,
    trail,
    phase: "done",
    removed: group.flatMap((e) => e.kind === "removed" ? [e.path] : []),
    destroyed: group.flatMap((e) => e.kind === "destroyed" ? [{ path: e.path, versions: [...e.versions] }] : []),
    skipped: group.flatMap((e) => e.kind === "skipped" ? [e.path] : []),
  }));
}
