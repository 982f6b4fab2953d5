/**
 * What an InvokeModel body tells the policies. The body is each provider's own JSON; the library
 * reads it only in the formats it knows for the model's provider, and only when every top-level
 * field is one it knows: a field it does not know might carry a token limit or a tool it cannot
 * see, so such a body is reported as not inspected (`context.payloadInspected == false`), which a
 * policy can refuse. When several token-limit fields are present, the largest counts.
 * @module
 */

import { writesAKeyTwice } from "../json-keys.js";
import { asRecord } from "../records.js";

/** Bodies past this size are not parsed on the call path; they are reported as not inspected. */
export const MAX_INSPECTED_BODY_BYTES = 1024 * 1024;

/** What was read from a body. */
export interface BodyFacts {
  readonly inspected: boolean;
  readonly maxTokens?: number;
  /** The tools the body offers. Read even from a body that is not otherwise inspected. */
  readonly toolsOffered: readonly string[];
  /** The body has a `tools` or `toolConfig` field whose tool names cannot be read. */
  readonly toolsUnreadable?: boolean;
  /** The body writes an object key twice: what it asks for depends on the parser, so it cannot be decided. */
  readonly duplicateKey?: boolean;
}

type Json = Record<string, unknown>;

interface BodyFormat {
  /** Every top-level field of the format. */
  readonly fields: ReadonlySet<string>;
  /** The paths of its output-token limits. */
  readonly limits: readonly (readonly string[])[];
  /** Reads the names of the tools it offers (unknown shapes make the body uninspectable). */
  readonly tools?: (body: Json) => string[] | undefined;
}

const format = (fields: string[], limits: string[][], tools?: BodyFormat["tools"]): BodyFormat => ({
  fields: new Set(fields),
  limits,
  ...(tools && { tools }),
});

const SAMPLING = ["temperature", "top_p", "top_k", "stop", "stop_sequences"];

/** `[{ name }]` (Anthropic, Mistral) or `[{ function: { name } }]` (OpenAI-style). */
function namedTools(body: Json): string[] | undefined {
  const tools = body["tools"];
  if (tools === undefined) return [];
  if (!Array.isArray(tools)) return undefined;
  const names: string[] = [];
  for (const tool of tools) {
    const entry = asRecord(tool);
    const name = entry?.["name"] ?? asRecord(entry?.["function"])?.["name"];
    if (typeof name !== "string") return undefined;
    names.push(name);
  }
  return names;
}

/** Nova's `toolConfig.tools[].toolSpec.name`. */
function novaTools(body: Json): string[] | undefined {
  const config = body["toolConfig"];
  if (config === undefined) return [];
  const tools = asRecord(config)?.["tools"];
  if (!Array.isArray(tools)) return undefined;
  const names: string[] = [];
  for (const tool of tools) {
    const name = asRecord(asRecord(tool)?.["toolSpec"])?.["name"];
    if (typeof name !== "string") return undefined;
    names.push(name);
  }
  return names;
}

/** The formats known per provider (the first word of the model id). */
const FORMATS: Readonly<Record<string, readonly BodyFormat[]>> = {
  anthropic: [
    format(
      ["anthropic_version", "anthropic_beta", "messages", "system", "max_tokens", ...SAMPLING, "tools", "tool_choice", "thinking", "metadata"],
      [["max_tokens"]],
      namedTools,
    ),
    format(["anthropic_version", "prompt", "max_tokens_to_sample", ...SAMPLING], [["max_tokens_to_sample"]]),
  ],
  amazon: [
    format(["schemaVersion", "messages", "system", "inferenceConfig", "toolConfig", "additionalModelRequestFields"], [["inferenceConfig", "max_new_tokens"], ["inferenceConfig", "maxTokens"]], novaTools),
    format(["inputText", "textGenerationConfig"], [["textGenerationConfig", "maxTokenCount"]]),
    format(["inputText", "inputImage", "dimensions", "normalize", "embeddingTypes", "embeddingConfig"], []),
  ],
  meta: [format(["prompt", "max_gen_len", "temperature", "top_p", "images"], [["max_gen_len"]])],
  mistral: [
    format(["prompt", "max_tokens", ...SAMPLING], [["max_tokens"]]),
    format(["messages", "max_tokens", ...SAMPLING, "tools", "tool_choice", "response_format"], [["max_tokens"]], namedTools),
  ],
  cohere: [
    format(
      ["message", "chat_history", "documents", "preamble", "max_tokens", "temperature", "p", "k", "stop_sequences", "tools", "tool_results", "seed", "return_prompt", "prompt_truncation", "frequency_penalty", "presence_penalty", "raw_prompting", "search_queries_only"],
      [["max_tokens"]],
      namedTools,
    ),
    format(["texts", "images", "input_type", "truncate", "embedding_types"], []),
  ],
  openai: [
    format(["messages", "max_tokens", "max_completion_tokens", ...SAMPLING, "tools", "tool_choice", "reasoning_effort", "response_format", "seed", "n"], [["max_tokens"], ["max_completion_tokens"]], namedTools),
  ],
  deepseek: [format(["prompt", "messages", "max_tokens", ...SAMPLING], [["max_tokens"]])],
};

const NOT_INSPECTED: BodyFacts = Object.freeze({ inspected: false, toolsOffered: Object.freeze([]) as readonly string[] });

/**
 * Reads an InvokeModel body for a model of `provider`.
 *
 * @example
 * ```ts
 * invokeModelBodyFacts(JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 512, messages: [] }), "anthropic");
 * // { inspected: true, maxTokens: 512, toolsOffered: [] }
 * ```
 */
export function invokeModelBodyFacts(body: unknown, provider: string | undefined): BodyFacts {
  const parsed = parseBody(body);
  if (parsed === undefined) return NOT_INSPECTED;
  if (parsed === DUPLICATE_KEY) return { inspected: false, toolsOffered: [], duplicateKey: true };
  const formats = provider === undefined ? undefined : FORMATS[provider];
  for (const candidate of formats ?? []) {
    const facts = readAs(parsed, candidate);
    if (facts !== undefined) return facts;
  }
  // A body in no known format may still offer tools: they are decided all the same, and a tools
  // field whose names cannot be read denies the call rather than letting tools through undecided.
  const named = namedTools(parsed);
  const nova = novaTools(parsed);
  if (named === undefined || nova === undefined) return { inspected: false, toolsOffered: [], toolsUnreadable: true };
  const toolsOffered = [...named, ...nova];
  return toolsOffered.length === 0 ? NOT_INSPECTED : { inspected: false, toolsOffered };
}

function readAs(body: Json, candidate: BodyFormat): BodyFacts | undefined {
  for (const field of Object.keys(body)) if (!candidate.fields.has(field)) return undefined;
  let maxTokens: number | undefined;
  for (const path of candidate.limits) {
    let value: unknown = body;
    for (const step of path) value = asRecord(value)?.[step];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) return undefined;
    maxTokens = maxTokens === undefined ? value : Math.max(maxTokens, value);
  }
  const toolsOffered = candidate.tools ? candidate.tools(body) : [];
  if (toolsOffered === undefined) return undefined;
  return { inspected: true, ...(maxTokens !== undefined && { maxTokens }), toolsOffered };
}

const DUPLICATE_KEY = Symbol("duplicate key");

function parseBody(body: unknown): Json | typeof DUPLICATE_KEY | undefined {
  let text: string;
  if (typeof body === "string") text = body;
  else if (body instanceof Uint8Array) {
    if (body.byteLength > MAX_INSPECTED_BODY_BYTES) return undefined;
    text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  } else return undefined;
  if (text.length > MAX_INSPECTED_BODY_BYTES) return undefined;
  let parsed: Json | undefined;
  try {
    parsed = asRecord(JSON.parse(text));
  } catch {
    return undefined;
  }
  return parsed !== undefined && writesAKeyTwice(text, parsed) ? DUPLICATE_KEY : parsed;
}

