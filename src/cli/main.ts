#!/usr/bin/env node
/**
 * The `bedrock-warden` executable: `npx bedrock-warden <command>` (validate, test, explain,
 * verify-log, inventory). See `bedrock-warden --help`.
 * @module
 */
import { runCli } from "./cli.js";
import { processIO } from "./io.js";

// `bedrock-warden inventory log | head` closes stdout early: stop quietly, as other CLIs do.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

void runCli(process.argv.slice(2), processIO).then((code) => {
  process.exitCode = code;
});
