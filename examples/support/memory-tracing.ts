/**
 * The examples' tracing: spans kept in memory (to be printed as a tree at the end) through the
 * OpenTelemetry SDK, registered globally with an AsyncLocalStorage context manager.
 */
import { context, trace, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

export interface MemoryTracing {
  readonly exporter: InMemorySpanExporter;
  readonly provider: BasicTracerProvider;
  /** The example's own tracer, for its task spans. */
  readonly tracer: Tracer;
}

export function startMemoryTracing(tracerName: string): MemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  return { exporter, provider, tracer: trace.getTracer(tracerName) };
}
