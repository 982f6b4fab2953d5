import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const root = fileURLToPath(new URL("..", import.meta.url));
const run = (file: string) =>
  JSON.parse(execFileSync(process.execPath, [fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url))], { cwd: root, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" }, stdio: ["ignore", "pipe", "ignore"] })) as {
    text: string;
    denied: boolean;
    sent: number;
  };

describe("the built package", () => {
  it("has been built (npm test builds it first)", () => {
    assert.ok(existsSync(new URL("../dist/index.js", import.meta.url)), "dist/index.js is missing: run `npm run build`");
    assert.ok(existsSync(new URL("../dist/index.cjs", import.meta.url)), "dist/index.cjs is missing: run `npm run build`");
  });

  it("works from CommonJS (require)", () => {
    assert.deepEqual(run("consumer.cjs"), { text: "from cjs", denied: true, sent: 1 });
  });

  it("works from an ES module (import)", () => {
    assert.deepEqual(run("consumer.mjs"), { text: "from esm", denied: true, sent: 1 });
  });
});
