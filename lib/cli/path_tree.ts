/**
 * How `spike secret list` shows paths: one level below a folder (the next
 * path component, sub-folders ending in `/`), or every path drawn as a tree.
 * Pure functions over sorted paths.
 *
 * @module
 */

/**
 * The entries one level below `folder` (which ends in `/`, or is `""` for
 * the top): for each path under it, the path up to and including the next
 * `/` after the folder (a sub-folder), or the whole path (a secret), each
 * once, in the order given (sorted input gives sorted output, folders and
 * secrets interleaved as their names sort).
 */
export function oneLevel(paths: Iterable<string>, folder: string): string[] {
  const out = new Set<string>();
  for (const path of paths) {
    if (!path.startsWith(folder) || path === folder) continue;
    const slash = path.indexOf("/", folder.length);
    out.add(slash < 0 ? path : path.slice(0, slash + 1));
  }
  return [...out];
}

interface Node {
  readonly children: Map<string, Node>;
  secret: boolean;
}

/**
 * Draws `paths` (all under `root`, which ends in `/` or is `""`) as a tree
 * with box-drawing lines: one line per folder (`name/`) and per secret. A
 * path that is both a secret and a folder (`a` and `a/b`) shows both.
 */
export function drawTree(paths: Iterable<string>, root: string): string {
  const top: Node = { children: new Map(), secret: false };
  for (const path of paths) {
    if (!path.startsWith(root) || path === root) continue;
    let node = top;
    const parts = path.slice(root.length).split("/");
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      // A folder's key ends in "/", so a secret `a` and a folder `a/` are siblings.
      const key = last ? part : `${part}/`;
      let child = node.children.get(key);
      if (!child) node.children.set(key, child = { children: new Map(), secret: false });
      if (last) child.secret = true;
      node = child;
    });
  }
  const lines: string[] = [root === "" ? "." : root];
  const walk = (node: Node, indent: string) => {
    const entries = [...node.children.entries()];
    entries.forEach(([name, child], i) => {
      const lastChild = i === entries.length - 1;
      lines.push(`${indent}${lastChild ? "└── " : "├── "}${name}`);
      walk(child, indent + (lastChild ? "    " : "│   "));
    });
  };
  walk(top, "");
  return lines.join("\n") + "\n";
}
