/**
 * Attribution (by the authorization middleware, once a call is allowed): writes the workload, the
 * trace and the decision into the request's metadata, which Bedrock copies into its model
 * invocation logs, so that AWS's own records name the workload too. Sanitized to Bedrock's
 * limits so attribution can never make Bedrock reject a call; the caller's input object is never
 * mutated and the caller's own metadata is kept.
 * @module
 */
import { isSpanContextValid } from "@opentelemetry/api";
import type { GovernedCall } from "./governed-call.js";
import { setOwnKey } from "../validation.js";

/**
 * Bedrock's limits on request metadata: 1-16 entries, keys 1-256 and values 0-256 characters of
 * `[a-zA-Z0-9\s:_@$#=/+,-.]`.
 *
 * @example
 * ```ts
 * if (Object.keys(myMetadata).length >= REQUEST_METADATA_LIMITS.maxEntries) console.warn("no room left for attribution");
 * ```
 */
export const REQUEST_METADATA_LIMITS = { maxEntries: 16, maxKeyLength: 256, maxValueLength: 256 } as const;
// Only the ASCII space of `\s`: JavaScript's `\s` also matches U+00A0, U+2028 and others, which
// Bedrock's pattern may not accept and which are invalid in the InvokeModel metadata header.
const DISALLOWED = /[^a-zA-Z0-9 :_@$#=/+,\-.]/g;

/**
 * The metadata keys bedrock-warden writes; a caller's value under one of these is replaced, so
 * attribution cannot be forged.
 *
 * @example
 * ```ts
 * // In Bedrock's model invocation logs (CloudWatch Logs Insights):
 * // filter requestMetadata.`warden.workload` = "spiffe://acme.example/agents/invoice"
 * const key = ATTRIBUTION_KEYS.workload; // "warden.workload"
 * ```
 */
export const ATTRIBUTION_KEYS = {
  workload: "warden.workload",
  traceId: "warden.trace_id",
  decisionId: "warden.decision_id",
  purpose: "warden.purpose",
} as const;

/**
 * Makes a string acceptable to Bedrock as a metadata value: characters outside Bedrock's set
 * (and any whitespace but the ASCII space) become `_`, and values are cut to 256 characters.
 *
 * @example
 * ```ts
 * sanitizeMetadataValue("spiffe://acme.example/agents/émile?x=1"); // "spiffe://acme.example/agents/_mile_x=1"
 * ```
 */
export function sanitizeMetadataValue(value: string): string {
  return value.replace(DISALLOWED, "_").slice(0, REQUEST_METADATA_LIMITS.maxValueLength);
}

/**
 * The input to send for an allowed call: the call's own input with the attribution merged into its
 * request metadata (a copy; the input decided on is never changed), or that input itself when
 * the command carries no metadata or the caller's own metadata cannot be added to.
 */
export function attributedInput(call: GovernedCall, input: Record<string, unknown>): Record<string, unknown> {
  if (!call.identity) return input;
  const command = call.commandName;
  if (command === "ConverseCommand" || command === "ConverseStreamCommand") {
    const own = input["requestMetadata"];
    const merged = merge(call, typeof own === "object" && own !== null ? (own as Record<string, unknown>) : {});
    return { ...input, requestMetadata: merged };
  }
  if (command === "InvokeModelCommand" || command === "InvokeModelWithResponseStreamCommand") {
    const own = input["requestMetadata"];
    let ownEntries: Record<string, unknown> = {};
    if (typeof own === "string") {
      try {
        const parsed: unknown = JSON.parse(own);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TypeError("not an object");
        ownEntries = parsed as Record<string, unknown>;
      } catch {
        // Unreadable here is not unreadable everywhere: a laxer parser could read attribution forged
        // in it. It is replaced by ours alone (the caller's entries are lost; the span says "partial").
        const attributed = { ...input, requestMetadata: JSON.stringify(merge(call, {})) };
        call.attribution = "partial";
        return attributed;
      }
    }
    return { ...input, requestMetadata: JSON.stringify(merge(call, ownEntries)) };
  }
  return input;
}

const RESERVED = new Set<string>(Object.values(ATTRIBUTION_KEYS));
const SANITIZED_CACHE_SIZE = 1024;
const sanitized = new Map<string, string>();

/** Workload ids and purposes repeat from call to call: sanitize each once (bounded; emptied when full). */
function sanitizedOnce(value: string): string {
  let clean = sanitized.get(value);
  if (clean === undefined) {
    clean = sanitizeMetadataValue(value);
    if (sanitized.size >= SANITIZED_CACHE_SIZE) sanitized.clear();
    sanitized.set(value, clean);
  }
  return clean;
}

function merge(call: GovernedCall, own: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  let entries = 0;
  for (const key of Object.keys(own)) {
    if (!RESERVED.has(key)) {
      setOwnKey(merged, key, own[key]);
      entries++;
    }
  }
  const spanContext = call.span.spanContext();
  let wanted = 0;
  let added = 0;
  const marks: string[] = [];
  const add = (key: string, value: string | undefined, checked = false) => {
    if (value === undefined) return;
    wanted++;
    if (entries >= REQUEST_METADATA_LIMITS.maxEntries) return;
    merged[key] = value;
    entries++;
    added++;
    // As JSON writes the entry (the values hold no character it escapes): checked after signing.
    if (checked) marks.push(`"${key}":"${value}"`);
  };
  // Trace ids and decision ids are hex and UUIDs: already within Bedrock's character set.
  add(ATTRIBUTION_KEYS.workload, call.identity && sanitizedOnce(call.identity.id), true);
  add(ATTRIBUTION_KEYS.traceId, isSpanContextValid(spanContext) ? spanContext.traceId : undefined);
  add(ATTRIBUTION_KEYS.decisionId, call.id, true);
  call.attributionMarks = marks;
  add(ATTRIBUTION_KEYS.purpose, call.scope.purpose === undefined ? undefined : sanitizedOnce(call.scope.purpose));
  call.attribution = added === wanted ? "full" : added > 0 ? "partial" : "none";
  return merged;
}
