/**
 * Prints finished spans as an indented tree, with the attributes a reader cares about: who,
 * what was decided and why, and what the call cost. Span links are printed too: an
 * `execute_tool` span is a child of the caller's span and *links* to the `chat` span whose
 * response asked for the tool call ("← requested by chat … #1a2b3c4d", the `#` naming the span id
 * shown on that chat span). The tool calls a model asked for (events on its chat span) are listed
 * under it.
 */
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { GEN_AI, LINK_ATTRIBUTE, LINK_REQUESTED_BY, WARDEN } from "bedrock-warden";

const KIND = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];

export function formatTraceTree(spans: readonly ReadableSpan[]): string {
  const byParent = new Map<string | undefined, ReadableSpan[]>();
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const linked = new Set(spans.flatMap((s) => s.links.map((l) => l.context.spanId)));
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId;
    const key = parent && byId.has(parent) ? parent : undefined;
    byParent.set(key, [...(byParent.get(key) ?? []), span]);
  }
  const lines: string[] = [];
  const walk = (span: ReadableSpan, prefix: string, last: boolean, root: boolean) => {
    const branch = root ? "" : last ? "└─ " : "├─ ";
    lines.push(`${prefix}${branch}${describe(span, linked, byId)}`);
    const children = (byParent.get(span.spanContext().spanId) ?? []).sort((a, b) => compare(a.startTime, b.startTime));
    const childPrefix = root ? prefix : prefix + (last ? "   " : "│  ");
    // The tool calls the model asked for, each decided: events on the chat span.
    const calls = span.events.filter((e) => e.name === "bedrock_warden.tool_call");
    for (const call of calls) {
      const a = call.attributes ?? {};
      const policies = (a[WARDEN.DECISION_POLICIES] as string[] | undefined)?.join(", ") || "no policy";
      const bar = children.length > 0 ? "│  " : "   ";
      lines.push(`${childPrefix}${bar}  ⋯ model asked for ${String(a[GEN_AI.TOOL_NAME])} (${String(a[GEN_AI.TOOL_CALL_ID])}): ${String(a[WARDEN.DECISION]).toUpperCase()} by ${policies}`);
    }
    children.forEach((child, i) => walk(child, childPrefix, i === children.length - 1, false));
  };
  for (const root of (byParent.get(undefined) ?? []).sort((a, b) => compare(a.startTime, b.startTime))) walk(root, "", true, true);
  return lines.join("\n");
}

/** The short id shown on a span that others link to, and in the links that point at it. */
function shortId(spanId: string): string {
  return `#${spanId.slice(0, 8)}`;
}

function describe(span: ReadableSpan, linked: ReadonlySet<string>, byId: ReadonlyMap<string, ReadableSpan>): string {
  const a = span.attributes;
  const ms = (span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(1);
  const id = linked.has(span.spanContext().spanId) ? ` ${shortId(span.spanContext().spanId)}` : "";
  const parts = [`${span.name}${id}  [${KIND[span.kind]}, ${ms} ms]`];
  if (a[WARDEN.DECISION] !== undefined) {
    const policies = (a[WARDEN.DECISION_POLICIES] as string[] | undefined)?.join(", ") || "no policy";
    parts.push(`${String(a[WARDEN.DECISION]).toUpperCase()} by ${policies}`);
  }
  if (a[WARDEN.WORKLOAD_ID] !== undefined) parts.push(`as ${String(a[WARDEN.WORKLOAD_ID])}`);
  if (a[GEN_AI.OPERATION_NAME] === "execute_tool" && a[GEN_AI.TOOL_CALL_ID] !== undefined) parts.push(`call ${String(a[GEN_AI.TOOL_CALL_ID])}`);
  if (a[GEN_AI.USAGE_INPUT_TOKENS] !== undefined) parts.push(`tokens ${a[GEN_AI.USAGE_INPUT_TOKENS]} in / ${a[GEN_AI.USAGE_OUTPUT_TOKENS]} out`);
  if (a[WARDEN.TOOLS_WITHHELD] !== undefined) parts.push(`tools withheld: ${(a[WARDEN.TOOLS_WITHHELD] as string[]).join(", ")}`);
  if (a[WARDEN.STREAM_OUTCOME] !== undefined) parts.push(`stream ${a[WARDEN.STREAM_OUTCOME]}, ${a[WARDEN.STREAM_EVENTS]} events`);
  if (a[GEN_AI.ERROR_TYPE] !== undefined) parts.push(`error ${a[GEN_AI.ERROR_TYPE]}`);
  for (const link of span.links) {
    const target = byId.get(link.context.spanId);
    const what = link.attributes?.[LINK_ATTRIBUTE] === LINK_REQUESTED_BY ? "requested by" : "linked to";
    parts.push(`← ${what} ${target?.name ?? "a span not in this trace"} ${shortId(link.context.spanId)}`);
  }
  return parts.join(" · ");
}

function compare(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}
