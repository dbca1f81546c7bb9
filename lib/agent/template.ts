/**
 * The `template` format of `spike agent`: a strict subset of Go's
 * `text/template`, enough to lay secret values into a config file.
 *
 * Hand-written because the one maintained Go-template package on npm
 * (`@ctrl/golang-template`) renders a missing key as an empty string and
 * runs template-supplied regular expressions; here a missing key is an
 * error and a template can do nothing but insert values.
 *
 * Actions, each between `{{` and `}}` with any spaces inside:
 *
 * | action | output |
 * |---|---|
 * | `{{ .name }}` | the value of key `name` (a key named like a Go field: letters, digits, `_`) |
 * | `{{ index . "any key" }}` | the value of any key, e.g. one with `-` or spaces |
 * | `{{ "text" }}` | `text` as is; `{{ "{{" }}` writes a literal `{{` |
 * | `{{/* note *\/}}` | nothing (a comment) |
 *
 * As in Go, `{{- ` trims the white space before the action and ` -}}` the
 * white space after it. Strings take the escapes `\"`, `\\`, `\n` and `\t`.
 * Anything else is a syntax error naming line and column.
 *
 * @module
 */

/** A template that cannot be parsed, or a key it needs that the secret lacks. */
export class TemplateError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

type Part =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "key"; readonly key: string; readonly at: string };

/** A parsed template. */
export interface CompiledTemplate {
  /** Keys the template reads, in order of first use. */
  readonly keys: readonly string[];
  /**
   * Fills in `values`.
   *
   * @throws {TemplateError} naming the first key `values` lacks (never a value).
   */
  render(values: Readonly<Record<string, string>>): string;
}

const FIELD = /^\.([A-Za-z_][A-Za-z0-9_]*)$/;
const INDEX = /^index\s+\.\s+("(?:[^"\\]|\\.)*")$/s;
const STRING = /^"(?:[^"\\]|\\.)*"$/s;
const COMMENT = /^\/\*[\s\S]*\*\/$/;
const SPACE = /[ \t\r\n]/;

/**
 * Parses `source`.
 *
 * @throws {TemplateError} with line and column for anything outside the subset.
 */
export function compileTemplate(source: string): CompiledTemplate {
  const parts: Part[] = [];
  let text = "";
  let i = 0;
  let trimNextText = false;
  while (i < source.length) {
    const open = source.indexOf("{{", i);
    let chunk = source.slice(i, open < 0 ? source.length : open);
    if (trimNextText) chunk = chunk.replace(/^[ \t\r\n]+/, "");
    trimNextText = false;
    if (open < 0) {
      text += chunk;
      break;
    }
    const trimBefore = source[open + 2] === "-" && SPACE.test(source[open + 3] ?? "");
    if (trimBefore) chunk = chunk.replace(/[ \t\r\n]+$/, "");
    text += chunk;
    const bodyStart = open + (trimBefore ? 3 : 2);
    const close = findClose(source, bodyStart);
    if (close < 0) throw new TemplateError(`${position(source, open)}: '{{' is never closed with '}}'`);
    const trimAfter = source[close - 1] === "-" && close - 2 >= bodyStart && SPACE.test(source[close - 2]!);
    const body = source.slice(bodyStart, trimAfter ? close - 1 : close).trim();
    const at = position(source, open);
    const action = parseAction(body, at);
    if (action.kind === "text") text += action.text;
    else {
      if (text !== "") parts.push({ kind: "text", text });
      text = "";
      parts.push(action);
    }
    trimNextText = trimAfter;
    i = close + 2;
  }
  if (text !== "") parts.push({ kind: "text", text });
  const keys = [...new Set(parts.flatMap((p) => p.kind === "key" ? [p.key] : []))];
  return {
    keys,
    render(values) {
      let out = "";
      for (const part of parts) {
        if (part.kind === "text") out += part.text;
        else if (Object.hasOwn(values, part.key)) out += values[part.key];
        else throw new TemplateError(`${part.at}: the secret has no key '${part.key}'`);
      }
      return out;
    },
  };
}

/** Index of the `}}` closing an action body starting at `from`, skipping string literals; -1 if none. */
function findClose(source: string, from: number): number {
  let inString = false;
  for (let i = from; i < source.length; i++) {
    const c = source[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "}" && source[i + 1] === "}") return i;
  }
  return -1;
}

function parseAction(body: string, at: string): Part {
  if (COMMENT.test(body)) return { kind: "text", text: "" };
  const field = FIELD.exec(body);
  if (field) return { kind: "key", key: field[1]!, at };
  const index = INDEX.exec(body);
  if (index) return { kind: "key", key: unquote(index[1]!, at), at };
  if (STRING.test(body)) return { kind: "text", text: unquote(body, at) };
  throw new TemplateError(
    `${at}: '{{ ${body} }}' is not supported (use {{ .key }}, {{ index . "key" }} or {{ "text" }})`,
  );
}

function unquote(literal: string, at: string): string {
  return literal.slice(1, -1).replace(/\\(.)/gs, (_, c: string) => {
    switch (c) {
      case "n":
        return "\n";
      case "t":
        return "\t";
      case '"':
      case "\\":
        return c;
      default:
        throw new TemplateError(`${at}: unknown escape '\\${c}' in a string (use \\", \\\\, \\n or \\t)`);
    }
  });
}

/** `line L, column C` (1-based) of `offset` in `source`. */
function position(source: string, offset: number): string {
  const before = source.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `line ${line}, column ${column}`;
}
