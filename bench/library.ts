/**
 * What the benchmarks measure: the built package (`dist/`), as users run it. Not the TypeScript
 * sources through tsx: its transform keeps function names by wrapping every closure created on
 * the call path in a property definition, which the build does not do (~10 µs a governed call).
 * Typed as the sources the build is made from. `npm run bench` builds first.
 *
 * Diagnostics that reach into internal modules (`bench/pieces.ts`, the tool decision row) import
 * the sources, and build what they measure from them too: objects of one copy are never handed to
 * the other (the engine recognizes only its own copy's sealed entities).
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type * as Library from "../src/index.js";
import type * as LocalEndpoint from "../src/local-endpoint/index.js";

const index = new URL("../dist/index.js", import.meta.url);
if (!existsSync(fileURLToPath(index))) throw new Error("bench: dist/ is missing: run `npm run build` first (`npm run bench` does)");

/** The package's public API, from the build. */
export const library = (await import(index.href)) as typeof Library;
/** `bedrock-warden/local-endpoint`, from the build. */
export const localEndpoint = (await import(new URL("../dist/local-endpoint.js", import.meta.url).href)) as typeof LocalEndpoint;
