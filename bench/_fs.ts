import fs from "node:fs";
import { BedrockRuntime, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { MemoryBedrock } from "./memory-bedrock.js";
process.removeAllListeners("warning");
const log = (what: string) => (...args: unknown[]) => console.log(what, String(args[0]));
for (const name of ["readFile", "open", "stat", "access", "readdir"] as const) {
  const orig = (fs.promises as any)[name]; (fs.promises as any)[name] = (...a: unknown[]) => { log("promises." + name)(...a); return orig(...a); };
}
for (const name of ["readFileSync", "openSync", "statSync", "existsSync", "readFile", "open", "stat"] as const) {
  const orig = (fs as any)[name]; (fs as any)[name] = (...a: unknown[]) => { log(name)(...a); return orig(...a); };
}
const extra = process.argv[2] === "pinned" ? { maxAttempts: 3, retryMode: "standard", defaultsMode: "standard" as const, authSchemePreference: [] as string[], useDualstackEndpoint: false, useFipsEndpoint: false, userAgentAppId: "bedrock-warden-bench" } : {};
const c = new BedrockRuntime({ region: "us-east-1", credentials: { accessKeyId: "A", secretAccessKey: "B" }, requestHandler: new MemoryBedrock(), ...extra });
console.log("--- constructed");
await c.send(new ConverseCommand({ modelId: "amazon.nova-lite-v1:0", messages: [{ role: "user", content: [{ text: "hi" }] }] }));
console.log("--- first call done");
await c.send(new ConverseCommand({ modelId: "amazon.nova-lite-v1:0", messages: [{ role: "user", content: [{ text: "hi" }] }] }));
console.log("--- second call done");
