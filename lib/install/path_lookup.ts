/**
 * PATH questions the installer asks: is a directory on the user's PATH, and
 * which `deno` would the installed shim run.
 *
 * @module
 */
import { join, resolve } from "node:path";

/**
 * Directories `npx` puts in front of PATH for one command only (its package
 * cache's `node_modules/.bin`). They are gone once `npx` exits, so the
 * installer must not count on them.
 */
export function isTransientDir(dir: string): boolean {
  return /[/\\]_npx[/\\]/.test(dir) || /[/\\]node_modules[/\\]\.bin[/\\]?$/.test(dir);
}

/** The user's lasting PATH directories, in order (empty entries and npx's dropped). */
export function lastingPathDirs(pathVar: string | undefined): string[] {
  return (pathVar ?? "").split(":").filter((dir) => dir !== "" && !isTransientDir(dir)).map((dir) => resolve(dir));
}

/** Whether `dir` is one of the user's lasting PATH directories. */
export function isOnPath(dir: string, pathVar: string | undefined): boolean {
  const wanted = resolve(dir);
  return lastingPathDirs(pathVar).includes(wanted);
}

/**
 * The first executable file named `name` in the lasting PATH directories,
 * or `undefined`. `isExecutable` answers for one path (injected for tests).
 */
export function findOnPath(
  name: string,
  pathVar: string | undefined,
  isExecutable: (path: string) => boolean,
): string | undefined {
  for (const dir of lastingPathDirs(pathVar)) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** `isExecutable` for the real file system: a regular file with an execute bit. */
export function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}
