/**
 * The README stays true to the code where it names the code's own identifiers: every error code it
 * names is one the library throws.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const sourceDirectory = new URL("../src/", import.meta.url);
const sources = readdirSync(sourceDirectory, { recursive: true, encoding: "utf8" })
  .filter((file) => file.endsWith(".ts"))
  .map((file) => readFileSync(new URL(file, sourceDirectory), "utf8"))
  .join("\n");

describe("the README", () => {
  it("names only error codes the library's errors have", () => {
    const named = new Set(readme.match(/ERR_[A-Za-z0-9_]+/g) ?? []);
    assert.ok(named.size >= 10, `the README names the error codes (${named.size} found)`);
    const thrown = new Set([...sources.matchAll(/"(ERR_[A-Z_]+)"/g)].map((match) => match[1]));
    assert.deepEqual([...named].filter((code) => !thrown.has(code)), []);
  });
});
