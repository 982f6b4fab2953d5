/**
 * For observability teams: the same governed calls, exported with the OpenTelemetry SDK's OTLP
 * exporter, and what a trace backend receives.
 *
 *   npx tsx examples/otlp-export.ts
 *       starts a small OTLP/HTTP receiver on 127.0.0.1 and prints the spans it receives
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://collector:4318/v1/traces npx tsx examples/otlp-export.ts
 *       sends to your collector instead (Jaeger, Tempo, an OpenTelemetry Collector, ...)
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { AccessDeniedError, createGovernance, GovernedBedrockRuntimeClient, policiesFromDirectory, runAs } from "bedrock-warden";
import { bedrockTarget } from "./support/bedrock-target.js";
import { INVOICE_TOOLS } from "./support/invoice-tools.js";

process.removeAllListeners("warning");

// Where spans go: your collector, or a receiver started here that prints what it gets.
let url = process.env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];
const received: unknown[] = [];
const receiver = url
  ? undefined
  : createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        received.push(JSON.parse(body));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
if (receiver) {
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
}

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": "invoice-service", "deployment.environment.name": "production" }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);

const target = await bedrockTarget();
const governance = createGovernance({
  environment: "production",
  policies: policiesFromDirectory(fileURLToPath(new URL("./policies", import.meta.url))),
  tools: INVOICE_TOOLS, // the policies name the invoice tools' actions
});
const bedrock = new GovernedBedrockRuntimeClient({ ...target.clientConfig, governance });
const invoiceAgent = { id: "spiffe://acme.example/agents/invoice", groups: ["billing"] };
const messages = [{ role: "user" as const, content: [{ text: "Reconcile invoice 4711" }] }];

await runAs(invoiceAgent, async () => {
  await bedrock.send(new ConverseCommand({ modelId: "us.anthropic.claude-3-5-haiku-20241022-v1:0", messages, inferenceConfig: { maxTokens: 512 } }));
  await bedrock.send(new ConverseCommand({ modelId: "anthropic.claude-3-opus-20240229-v1:0", messages, inferenceConfig: { maxTokens: 512 } })).catch((error: unknown) => {
    if (!(error instanceof AccessDeniedError)) throw error;
  });
}, { purpose: "reconcile invoices" });

await provider.forceFlush();
console.log(`Spans exported over OTLP/HTTP to ${url}`);
if (receiver) {
  // The OTLP JSON a backend receives: resource, scope, then each span with its attributes.
  type OtlpValue = { stringValue?: string; intValue?: string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } };
  const show = (v: OtlpValue): unknown => v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values?.map(show);
  for (const payload of received as { resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { scope: { name: string; version?: string }; spans: { name: string; kind: number; status?: { code?: number }; attributes: { key: string; value: OtlpValue }[] }[] }[] }[] }[]) {
    for (const resourceSpans of payload.resourceSpans) {
      console.log(`resource: ${resourceSpans.resource.attributes.filter((a) => a.key.startsWith("service.") || a.key.startsWith("deployment.")).map((a) => `${a.key}=${String(show(a.value))}`).join(", ")}`);
      for (const scopeSpans of resourceSpans.scopeSpans) {
        console.log(`scope: ${scopeSpans.scope.name} ${scopeSpans.scope.version ?? ""}`);
        for (const span of scopeSpans.spans) {
          console.log(`\n  span "${span.name}" (kind ${span.kind === 3 ? "CLIENT" : span.kind}, status ${span.status?.code === 2 ? "ERROR" : "OK"})`);
          for (const attribute of span.attributes) console.log(`    ${attribute.key} = ${JSON.stringify(show(attribute.value))}`);
        }
      }
    }
  }
  receiver.close();
}
bedrock.destroy();
await target.close();
await provider.shutdown();
