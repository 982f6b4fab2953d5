/**
 * Reads what a response tells about the call — token usage, finish reasons, the AWS request id —
 * from Converse/InvokeModel outputs and from each stream event, without holding on to content
 * unless content capture is on.
 * @module
 */

/** What was observed of a call's response. */
export interface CallObservation {
  usage?: { inputTokens?: number; outputTokens?: number };
  finishReasons: string[];
  requestId?: string;
  /** Set for streaming calls. */
  stream?: { events: number; firstChunkSeconds?: number; outcome?: "completed" | "failed" | "abandoned" };
  /** The assistant's text, accumulated only when content capture is on. */
  outputText?: string;
}

/** A fresh observation. */
export function newObservation(): CallObservation {
  return { finishReasons: [] };
}

/** The response hook for non-streaming outputs (Converse, InvokeModel and the rest). */
export function observeOutput(
  observation: CallObservation,
  output: Record<string, unknown>,
  headers: Readonly<Record<string, string>> | undefined,
  captureContent: boolean,
): void {
  const metadata = output["$metadata"] as { requestId?: unknown } | undefined;
  if (typeof metadata?.requestId === "string") observation.requestId = metadata.requestId;
  const usage = output["usage"] as Record<string, unknown> | undefined;
  if (usage && typeof usage === "object") setUsage(observation, usage["inputTokens"], usage["outputTokens"]);
  if (typeof output["stopReason"] === "string") observation.finishReasons.push(output["stopReason"]);
  // InvokeModel reports usage in response headers only.
  if (headers) {
    setUsage(observation, toCount(headers["x-amzn-bedrock-input-token-count"]), toCount(headers["x-amzn-bedrock-output-token-count"]));
  }
  if (captureContent) {
    const content = (output["output"] as { message?: { content?: unknown } } | undefined)?.message?.content;
    if (Array.isArray(content)) {
      observation.outputText = content.map((block) => (typeof block?.text === "string" ? block.text : "")).join("");
    }
  }
}

/** The response hook for one ConverseStream event. */
export function observeConverseStreamEvent(observation: CallObservation, event: Record<string, unknown>, captureContent: boolean): void {
  const messageStop = event["messageStop"] as { stopReason?: unknown } | undefined;
  if (typeof messageStop?.stopReason === "string") observation.finishReasons.push(messageStop.stopReason);
  const usage = (event["metadata"] as { usage?: Record<string, unknown> } | undefined)?.usage;
  if (usage) setUsage(observation, usage["inputTokens"], usage["outputTokens"]);
  if (captureContent) {
    const text = (event["contentBlockDelta"] as { delta?: { text?: unknown } } | undefined)?.delta?.text;
    if (typeof text === "string") observation.outputText = (observation.outputText ?? "") + text;
  }
}

const decoder = new TextDecoder();

/**
 * The response hook for one InvokeModelWithResponseStream event. Providers put the usage in the
 * last chunk (`amazon-bedrock-invocationMetrics`) and their own stop reason fields.
 */
export function observeInvokeStreamEvent(observation: CallObservation, event: Record<string, unknown>): void {
  const bytes = (event["chunk"] as { bytes?: unknown } | undefined)?.bytes;
  if (!(bytes instanceof Uint8Array)) return;
  const text = decoder.decode(bytes);
  // Only the chunks that carry metrics or a stop reason are worth parsing.
  if (!text.includes("invocationMetrics") && !text.includes("stop_reason") && !text.includes("stopReason")) return;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return;
  }
  const metrics = parsed["amazon-bedrock-invocationMetrics"] as Record<string, unknown> | undefined;
  if (metrics) setUsage(observation, metrics["inputTokenCount"], metrics["outputTokenCount"]);
  const delta = parsed["delta"] as Record<string, unknown> | undefined;
  const reason = delta?.["stop_reason"] ?? parsed["stop_reason"] ?? parsed["stopReason"];
  if (typeof reason === "string" && !observation.finishReasons.includes(reason)) observation.finishReasons.push(reason);
}

function setUsage(observation: CallObservation, input: unknown, output: unknown): void {
  const inputTokens = toCount(input);
  const outputTokens = toCount(output);
  if (inputTokens === undefined && outputTokens === undefined) return;
  observation.usage = {
    ...observation.usage,
    ...(inputTokens !== undefined && { inputTokens }),
    ...(outputTokens !== undefined && { outputTokens }),
  };
}

function toCount(value: unknown): number | undefined {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
