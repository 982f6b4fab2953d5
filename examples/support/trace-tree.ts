/**
 * Prints finished spans as an indented tree, with the attributes a reader cares about: who,
 * what was decided and why, and what the call cost.
 */
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { GEN_AI, WARDEN } from "bedrock-warden";

const KIND = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];

export function formatTraceTree(spans: readonly ReadableSpan[]): string {
  const byParent = new Map<string | undefined, ReadableSpan[]>();
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId;
    const key = parent && ids.has(parent) ? parent : undefined;
    byParent.set(key, [...(byParent.get(key) ?? []), span]);
  }
  const lines: string[] = [];
  const walk = (span: ReadableSpan, prefix: string, last: boolean, root: boolean) => {
    const branch = root ? "" : last ? "└─ " : "├─ ";
    lines.push(`${prefix}${branch}${describe(span)}`);
    const children = (byParent.get(span.spanContext().spanId) ?? []).sort((a, b) => compare(a.startTime, b.startTime));
    const childPrefix = root ? prefix : prefix + (last ? "   " : "│  ");
    children.forEach((child, i) => walk(child, childPrefix, i === children.length - 1, false));
  };
  for (const root of (byParent.get(undefined) ?? []).sort((a, b) => compare(a.startTime, b.startTime))) walk(root, "", true, true);
  return lines.join("\n");
}

function describe(span: ReadableSpan): string {
  const a = span.attributes;
  const ms = (span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(1);
  const parts = [`${span.name}  [${KIND[span.kind]}, ${ms} ms]`];
  if (a[WARDEN.DECISION] !== undefined) {
    const policies = (a[WARDEN.DECISION_POLICIES] as string[] | undefined)?.join(", ") || "no policy";
    parts.push(`${String(a[WARDEN.DECISION]).toUpperCase()} by ${policies}`);
  }
  if (a[WARDEN.WORKLOAD_ID] !== undefined) parts.push(`as ${String(a[WARDEN.WORKLOAD_ID])}`);
  if (a[GEN_AI.USAGE_INPUT_TOKENS] !== undefined) parts.push(`tokens ${a[GEN_AI.USAGE_INPUT_TOKENS]} in / ${a[GEN_AI.USAGE_OUTPUT_TOKENS]} out`);
  if (a[WARDEN.STREAM_OUTCOME] !== undefined) parts.push(`stream ${a[WARDEN.STREAM_OUTCOME]}, ${a[WARDEN.STREAM_EVENTS]} events`);
  if (a[GEN_AI.ERROR_TYPE] !== undefined) parts.push(`error ${a[GEN_AI.ERROR_TYPE]}`);
  return parts.join(" · ");
}

function compare(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}
