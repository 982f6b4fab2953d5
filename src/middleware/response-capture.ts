/**
 * The response capture (in the attempt middleware): keeps a handle on the raw HTTP response of
 * each attempt — its headers (InvokeModel reports token usage there) and its body, which is what
 * must be destroyed to stop a model that is still streaming to a reader who has left.
 * @module
 */
import type { GovernedCall } from "./governed-call.js";

/** Keeps the attempt's raw response (or an error's `$response`) on its call. */
export function captureResponse(call: GovernedCall | undefined, response: unknown): void {
  if (!call || typeof response !== "object" || response === null) return;
  const { body, headers } = response as { body?: unknown; headers?: unknown };
  if (typeof (body as { destroy?: unknown })?.destroy === "function") call.responseBody = body as GovernedCall["responseBody"];
  if (typeof headers === "object" && headers !== null) call.responseHeaders = headers as Record<string, string>;
}
