import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", "local-endpoint": "src/local-endpoint/index.ts", cli: "src/cli/main.ts" },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  // import.meta.url (used to find the shipped schema) works in the CommonJS build too.
  shims: true,
  target: "node20",
  splitting: false,
});
