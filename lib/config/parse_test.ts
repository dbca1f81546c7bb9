import assert from "node:assert/strict";
import {
  ConfigError,
  parseBoolean,
  parseDuration,
  parseHttpsUrl,
  parseInteger,
  parseList,
  parseListenAddress,
} from "./parse.ts";

Deno.test("parseListenAddress accepts SPIKE's forms", () => {
  assert.deepEqual(parseListenAddress("X", ":8553"), { host: "0.0.0.0", port: 8553 });
  assert.deepEqual(parseListenAddress("X", "8443"), { host: "0.0.0.0", port: 8443 });
  assert.deepEqual(parseListenAddress("X", "127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
  assert.deepEqual(parseListenAddress("X", "[::1]:9"), { host: "::1", port: 9 });
});

Deno.test("parseListenAddress rejects bad ports with the variable name", () => {
  for (const bad of [":", ":abc", ":70000", "::1:80", "host:-1"]) {
    assert.throws(() => parseListenAddress("SPIKE_NEXUS_TLS_PORT", bad), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^SPIKE_NEXUS_TLS_PORT: /);
      return true;
    });
  }
});

Deno.test("parseDuration understands Go durations", () => {
  assert.equal(parseDuration("D", "5m"), 300_000);
  assert.equal(parseDuration("D", "30s"), 30_000);
  assert.equal(parseDuration("D", "1h30m"), 5_400_000);
  assert.equal(parseDuration("D", "1.5s"), 1500);
  assert.equal(parseDuration("D", "250ms"), 250);
  assert.equal(parseDuration("D", "0"), 0);
  for (const bad of ["", "5", "5 m", "m", "5x", "1h 2m", "-5s"]) {
    assert.throws(() => parseDuration("D", bad), ConfigError, bad);
  }
});

Deno.test("parseInteger, parseBoolean, parseList, parseHttpsUrl", () => {
  assert.equal(parseInteger("N", "10", 1, 100), 10);
  assert.throws(() => parseInteger("N", "0", 1, 100), /out of range/);
  assert.throws(() => parseInteger("N", "1.5", 1, 100), /whole number/);
  assert.equal(parseBoolean("B", "TRUE"), true);
  assert.equal(parseBoolean("B", "0"), false);
  assert.throws(() => parseBoolean("B", "maybe"), ConfigError);
  assert.deepEqual(parseList(" a, b,,c "), ["a", "b", "c"]);
  assert.equal(parseHttpsUrl("U", "https://localhost:8553/"), "https://localhost:8553");
  assert.throws(() => parseHttpsUrl("U", "http://localhost:8553"), /https/);
  assert.throws(() => parseHttpsUrl("U", "not a url"), /not a URL/);
});
