import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import type { AgentEntry, AgentFormat } from "./config.ts";
import { renderEntry, RenderError } from "./render.ts";
import { compileTemplate } from "./template.ts";

const values = { user: "admin", pass: 'it\'s "$x"\nline2', yes: "yes", num: "0123" };

function entry(format: AgentFormat, extra: Partial<AgentEntry> = {}): AgentEntry {
  return { field: "secrets[0]", path: "app/db", destination: "/x", format, mode: 0o600, onDelete: "keep", ...extra };
}

Deno.test("render: json and yaml give back exactly the values (yaml values all quoted)", () => {
  const json = renderEntry(entry("json"), values);
  assert.deepEqual(JSON.parse(json), values);
  assert.ok(json.startsWith('{\n  "num"'), "keys sorted");
  assert.ok(json.endsWith("}\n"));
  const yaml = renderEntry(entry("yaml"), values);
  assert.deepEqual(parseYaml(yaml), values);
  // "yes" and "0123" stay strings for YAML 1.1 readers too.
  assert.match(yaml, /^yes: "yes"$/m);
  assert.match(yaml, /^num: "0123"$/m);
});

Deno.test("render: env is dotenv text; a key that is no variable name is an error naming it", () => {
  assert.equal(renderEntry(entry("env"), { B: "1", A: "x'y" }), "A='x'\\''y'\nB='1'\n");
  assert.throws(() => renderEntry(entry("env"), { "db-pass": "hunter2" }), (e: unknown) => {
    assert.ok(e instanceof RenderError);
    assert.match(e.message, /key 'db-pass' is not a shell variable name.*use format template/);
    assert.ok(!e.message.includes("hunter2"));
    return true;
  });
});

Deno.test("render: raw is one value byte for byte; template fills in keys", () => {
  assert.equal(renderEntry(entry("raw", { key: "pass" }), values), values.pass);
  assert.throws(() => renderEntry(entry("raw", { key: "nope" }), values), /the secret has no key 'nope'/);
  const template = compileTemplate("{{ .user }}:{{ .pass }}");
  assert.equal(renderEntry(entry("template", { template }), values), `admin:${values.pass}`);
  assert.throws(
    () => renderEntry(entry("template", { template: compileTemplate("{{ .gone }}") }), values),
    /template: line 1, column 1: the secret has no key 'gone'/,
  );
});
