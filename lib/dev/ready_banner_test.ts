import assert from "node:assert/strict";
import { displayPath, EXAMPLE_COMMANDS, readyBanner } from "./ready_banner.ts";

Deno.test("readyBanner: paste-ready commands; paths under HOME shown with ~", () => {
  const text = readyBanner({
    nexusUrl: "https://127.0.0.1:8553",
    pilotEnvFile: "/home/u/.spike/dev/pilot.env",
    auditFile: "/home/u/.spike/dev/audit.log",
    home: "/home/u",
  });
  assert.equal(
    text,
    [
      "spike dev: ready — Nexus at https://127.0.0.1:8553",
      "  In another terminal:",
      "    source ~/.spike/dev/pilot.env",
      ...EXAMPLE_COMMANDS.map((c) => `    ${c}`),
      "  Audit trail (one line per request):  tail -f ~/.spike/dev/audit.log",
      "  Ctrl-C stops the stack.",
      "",
    ].join("\n"),
  );
});

Deno.test("readyBanner: without spike on PATH it says how to install it first (npx when there is no deno)", () => {
  const text = readyBanner({
    nexusUrl: "https://127.0.0.1:8553",
    pilotEnvFile: "/tmp/my dev/pilot.env",
    auditFile: "/tmp/my dev/audit.log",
    install: { repoDir: "/src/my spike", denoOnPath: false, denoVersion: "2.9.6" },
  });
  assert.match(text, /^ {4}cd '\/src\/my spike' && npx --yes deno@2\.9\.6 task install$/m);
  assert.match(text, /^ {4}source '\/tmp\/my dev\/pilot\.env'$/m);
  const withDeno = readyBanner({
    nexusUrl: "u",
    pilotEnvFile: "/p",
    auditFile: "/a",
    install: { repoDir: "/src/spike", denoOnPath: true, denoVersion: "2.9.6" },
  });
  assert.match(withDeno, /^ {4}cd \/src\/spike && deno task install$/m);
});

Deno.test("displayPath: ~ only when the rest needs no quoting; other paths quoted as needed", () => {
  assert.equal(displayPath("/home/u/.spike/dev/pilot.env", "/home/u"), "~/.spike/dev/pilot.env");
  assert.equal(displayPath("/home/u/a b/pilot.env", "/home/u"), "'/home/u/a b/pilot.env'");
  assert.equal(displayPath("/home/uv/pilot.env", "/home/u"), "/home/uv/pilot.env");
  assert.equal(displayPath("/srv/x", undefined), "/srv/x");
});
