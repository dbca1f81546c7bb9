import assert from "node:assert/strict";
import { compileTemplate, TemplateError } from "./template.ts";

const values = { user: "admin", pass: "p@ss {{ .user }}", "db host": "db.local", _x1: "x" };

Deno.test("template: fields, index, literals, comments", () => {
  const t = compileTemplate(
    'url=postgres://{{ .user }}:{{.pass}}@{{ index . "db host" }}/app{{/* why */}}\n{{ "{{" }} .user }}{{ ._x1 }}',
  );
  assert.deepEqual(t.keys, ["user", "pass", "db host", "_x1"]);
  // A value is inserted as is: it is never parsed as a template itself.
  assert.equal(t.render(values), "url=postgres://admin:p@ss {{ .user }}@db.local/app\n{{ .user }}x");
  assert.equal(compileTemplate("no actions }} here").render({}), "no actions }} here");
  assert.equal(compileTemplate('{{ "a\\"b\\\\c\\n\\t}}" }}').render({}), 'a"b\\c\n\t}}');
});

Deno.test("template: {{- and -}} trim white space as in Go", () => {
  const t = compileTemplate("a  \n {{- .user -}} \n\t b {{-  .user}}c{{.user -}}  d");
  assert.equal(t.render(values), "aadminbadmincadmind");
  // Without the space a dash is not a trim marker (and `.user-` is no field).
  assert.throws(() => compileTemplate("{{-.user}}"), TemplateError);
});

Deno.test("template: a missing key is an error naming the key, not an empty string", () => {
  const t = compileTemplate("line one\nvalue: {{ .missing }}");
  assert.throws(() => t.render(values), (e: unknown) => {
    assert.ok(e instanceof TemplateError);
    assert.equal(e.message, "line 2, column 8: the secret has no key 'missing'");
    return true;
  });
  // Not even an inherited Object member counts as a key.
  assert.throws(() => compileTemplate("{{ .toString }}").render({}), /no key 'toString'/);
});

Deno.test("template: anything beyond the subset is a syntax error with its position", () => {
  const cases: Array<[string, RegExp]> = [
    ["abc {{ .user", /line 1, column 5: '\{\{' is never closed/],
    ["{{ .user.name }}", /not supported/],
    ["\n  {{ if .user }}x{{ end }}", /line 2, column 3: '\{\{ if \.user \}\}' is not supported/],
    ['{{ printf "%s" .user }}', /not supported/],
    ["{{ . }}", /not supported/],
    ['{{ index .user "x" }}', /not supported/],
    ['{{ "bad \\q" }}', /unknown escape/],
    ["{{ }}", /not supported/],
  ];
  for (const [source, pattern] of cases) assert.throws(() => compileTemplate(source), pattern, source);
});
