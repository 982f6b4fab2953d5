/**
 * The attribution middleware (initialize step, after authorization): writes the workload, the
 * trace and the decision into the request's metadata, which Bedrock copies into its model
 * invocation logs, so that AWS's own records name the workload too. Sanitized to Bedrock's
 * limits so attribution can never make Bedrock reject a call; the caller's input object is never
 * mutated and the caller's own metadata is kept.
 * @module
 */
import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  InitializeMiddleware,
  MetadataBearer,
  RelativeMiddlewareOptions,
} from "@smithy/types";
import { isSpanContextValid } from "@opentelemetry/api";
import { GOVERNED_CALL, type GovernedCall } from "./governed-call.js";
import { authorizationMiddlewareOptions } from "./authorization.js";

export const attributionMiddlewareOptions: RelativeMiddlewareOptions = {
  name: "bedrockWardenAttributionMiddleware",
  relation: "after",
  toMiddleware: authorizationMiddlewareOptions.name,
  tags: ["BEDROCK_WARDEN"],
  override: false,
};

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

/** The attribution middleware factory. */
export function attributionMiddleware(): InitializeMiddleware<any, MetadataBearer> {
  return (next: InitializeHandler<any, MetadataBearer>, context: HandlerExecutionContext) => async (args: InitializeHandlerArguments<any>) => {
    const call = (context as Record<symbol, unknown>)[GOVERNED_CALL] as GovernedCall | undefined;
    const input = args.input as Record<string, unknown> | undefined;
    if (!call?.identity || typeof input !== "object" || input === null) return next(args);
    const command = call.commandName;
    if (command === "ConverseCommand" || command === "ConverseStreamCommand") {
      const own = input["requestMetadata"];
      const merged = merge(call, typeof own === "object" && own !== null ? (own as Record<string, unknown>) : {});
      return next({ ...args, input: { ...input, requestMetadata: merged } });
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
          // The caller's header is theirs to get right; adding to something unreadable could only make it worse.
          call.attribution = "none";
          return next(args);
        }
      }
      return next({ ...args, input: { ...input, requestMetadata: JSON.stringify(merge(call, ownEntries)) } });
    }
    return next(args);
  };
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
  for (const key in own) {
    if (!RESERVED.has(key)) {
      merged[key] = own[key];
      entries++;
    }
  }
  const spanContext = call.span.spanContext();
  // Trace ids and decision ids are hex and UUIDs: already within Bedrock's character set.
  const ours: [string, string | undefined][] = [
    [ATTRIBUTION_KEYS.workload, call.identity && sanitizedOnce(call.identity.id)],
    [ATTRIBUTION_KEYS.traceId, isSpanContextValid(spanContext) ? spanContext.traceId : undefined],
    [ATTRIBUTION_KEYS.decisionId, call.id],
    [ATTRIBUTION_KEYS.purpose, call.scope.purpose === undefined ? undefined : sanitizedOnce(call.scope.purpose)],
  ];
  let wanted = 0;
  let added = 0;
  for (const [key, value] of ours) {
    if (value === undefined) continue;
    wanted++;
    if (entries >= REQUEST_METADATA_LIMITS.maxEntries) continue;
    merged[key] = value;
    entries++;
    added++;
  }
  call.attribution = added === wanted ? "full" : added > 0 ? "partial" : "none";
  return merged;
}
