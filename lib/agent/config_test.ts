import assert from "node:assert/strict";
import { AgentConfigError, parseAgentConfig, type ParseOptions } from "./config.ts";

const files: Record<string, string> = { "/etc/spike/db.tmpl": "url={{ .url }}\n" };
const options: ParseOptions = {
  source: "agent.yaml",
  baseDir: "/etc/spike",
  readTextFile: (path) => {
    if (!(path in files)) throw new Error("No such file or directory");
    return files[path]!;
  },
};
const parse = (text: string) => parseAgentConfig(text, options);

Deno.test("agent config: the documented YAML shape, with defaults", () => {
  const config = parse(`
interval: 30s
secrets:
  - path: app/db
    destination: /run/secrets/db.env
    format: env
    mode: "0600"
    on_change: { signal: HUP, pid_file: /run/app.pid }
  - path: app/db
    version: 3
    destination: db.json
    format: json
  - path: app/tls
    destination: /run/secrets/key.pem
    format: raw
    key: key
    mode: "0640"
    owner: "1000:2000"
    on_delete: remove
    on_change: { command: [nginx, -s, reload], timeout: 10s }
  - path: app/db
    destination: /run/secrets/db.conf
    format: template
    template_file: db.tmpl
  - path: app/db
    destination: /run/secrets/inline.conf
    format: yaml
`);
  assert.equal(config.intervalMs, 30_000);
  assert.equal(config.maxBackoffMs, 300_000);
  assert.equal(config.nexusUrl, undefined);
  const [env, json, raw, tmpl, yaml] = config.entries;
  assert.deepEqual(
    { ...env, field: env!.field },
    {
      field: "secrets[0]",
      path: "app/db",
      destination: "/run/secrets/db.env",
      format: "env",
      mode: 0o600,
      onDelete: "keep",
      onChange: { kind: "signal", signal: "SIGHUP", pidFile: "/run/app.pid" },
    },
  );
  assert.equal(json!.version, 3);
  assert.equal(json!.destination, "/etc/spike/db.json", "relative to the config file's directory");
  assert.equal(raw!.key, "key");
  assert.equal(raw!.mode, 0o640);
  assert.deepEqual(raw!.owner, { uid: 1000, gid: 2000 });
  assert.equal(raw!.onDelete, "remove");
  assert.deepEqual(raw!.onChange, { kind: "command", command: ["nginx", "-s", "reload"], timeoutMs: 10_000 });
  assert.equal(tmpl!.template!.render({ url: "x" }), "url=x\n");
  assert.equal(yaml!.mode, 0o600);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.entries) && Object.isFrozen(raw));
});

Deno.test("agent config: JSON works the same", () => {
  const config = parse(JSON.stringify({
    nexus: "https://nexus.example:8553/",
    interval: "200ms",
    max_backoff: "2s",
    secrets: [{ path: "a/b", destination: "/x/y", format: "template", template: "{{ .k }}" }],
  }));
  assert.equal(config.nexusUrl, "https://nexus.example:8553");
  assert.equal(config.intervalMs, 200);
  assert.equal(config.maxBackoffMs, 2000);
  assert.equal(config.entries[0]!.template!.render({ k: "v" }), "v");
});

Deno.test("agent config: each mistake is named by file and field", () => {
  const one = (entry: string, top = "") => `${top}secrets:\n  - ${entry.trim().split("\n").join("\n    ")}\n`;
  const base = "path: a/b\ndestination: /x\n";
  const cases: Array<[string, RegExp]> = [
    ["secrets: [", /^agent\.yaml: not valid YAML or JSON/],
    ["- 1", /^agent\.yaml: the file: must be a mapping/],
    ["interval: 30s", /^agent\.yaml: secrets: give a list of at least one secret/],
    ["secrets: []", /secrets: give a list/],
    [one(`${base}format: env`, "intervall: 5s\n"), /^agent\.yaml: intervall: unknown field \(known: nexus, interval/],
    [one(`${base}format: env`, "interval: 30\n"), /^agent\.yaml: interval: must be a duration/],
    [one(`${base}format: env`, "interval: soon\n"), /^agent\.yaml: interval: 'soon' is not a duration/],
    [one(`${base}format: env`, "interval: 1ms\n"), /interval: must be between 50 ms/],
    [one(`${base}format: env`, "nexus: http://x\n"), /^agent\.yaml: nexus: 'http:\/\/x' must use https/],
    [one("destination: /x\nformat: env"), /^agent\.yaml: secrets\[0\]\.path: is required/],
    [one("path: 'a b'\ndestination: /x\nformat: env"), /secrets\[0\]\.path: 'a b' is not a secret path/],
    [one("path: a/b\nformat: env"), /secrets\[0\]\.destination: is required/],
    [one("path: a/b\ndestination: /x/\nformat: env"), /secrets\[0\]\.destination: '\/x\/' names a directory/],
    [one(base), /secrets\[0\]\.format: is required/],
    [one(`${base}format: xml`), /secrets\[0\]\.format: 'xml' is not one of env, json, yaml, raw, template/],
    [one(`${base}format: env\ndestnation: /y`), /secrets\[0\]\.destnation: unknown field/],
    [one(`${base}format: raw`), /secrets\[0\]\.key: format raw needs the key/],
    [one(`${base}format: json\nkey: k`), /secrets\[0\]\.key: is only used with format raw/],
    [one(`${base}format: template`), /secrets\[0\]: format template needs exactly one of template/],
    [one(`${base}format: template\ntemplate: x\ntemplate_file: y`), /exactly one of template/],
    [one(`${base}format: env\ntemplate: x`), /secrets\[0\]\.template: is only used with format template/],
    [
      one(`${base}format: template\ntemplate: '{{ .a.b }}'`),
      /secrets\[0\]\.template: line 1, column 1: .* not supported/,
    ],
    [
      one(`${base}format: template\ntemplate_file: nope.tmpl`),
      /secrets\[0\]\.template_file: cannot read \/etc\/spike\/nope\.tmpl/,
    ],
    [one(`${base}format: env\nmode: 0600`), /secrets\[0\]\.mode: give an octal string such as "0600"/],
    [one(`${base}format: env\nmode: "0999"`), /secrets\[0\]\.mode: '0999' is not an octal mode/],
    [one(`${base}format: env\nowner: root`), /secrets\[0\]\.owner: give numeric ids/],
    [one(`${base}format: env\nversion: -1`), /secrets\[0\]\.version: must be a whole number/],
    [one(`${base}format: env\non_delete: purge`), /secrets\[0\]\.on_delete: must be keep/],
    [one(`${base}format: env\non_change: { signal: HUP }`), /secrets\[0\]\.on_change\.pid_file: signal needs/],
    [
      one(`${base}format: env\non_change: { signal: KILL, pid_file: /p }`),
      /on_change\.signal: 'KILL' is not one of HUP/,
    ],
    [
      one(`${base}format: env\non_change: { command: "nginx -s reload" }`),
      /on_change\.command: must be a list of words/,
    ],
    [
      one(`${base}format: env\non_change: { command: [x], pid_file: /p }`),
      /on_change\.pid_file: is only used with signal/,
    ],
    [
      one(`${base}format: env\non_change: { signal: HUP, pid_file: /p, timeout: 1s }`),
      /on_change\.timeout: is only used/,
    ],
    [one(`${base}format: env\non_change: {}`), /secrets\[0\]\.on_change: give either signal/],
    [one(`${base}format: env\non_change: { command: [x], timeout: 0s }`), /on_change\.timeout: must be between/],
    [
      "secrets:\n  - { path: a, destination: /same, format: env }\n  - { path: b, destination: /same, format: json }\n",
      /secrets\[1\]\.destination: \/same is also the destination of secrets\[0\]/,
    ],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parse(text), (e: unknown) => {
      assert.ok(e instanceof AgentConfigError, `${text}: ${e}`);
      assert.match(e.message, pattern, text);
      return true;
    });
  }
});
