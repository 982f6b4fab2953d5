/**
 * The response-capture middleware (deserialize step): keeps a handle on the raw HTTP response of
 * each attempt — its headers (InvokeModel reports token usage there) and its body, which is what
 * must be destroyed to stop a model that is still streaming to a reader who has left.
 * @module
 */
import type {
  DeserializeHandler,
  DeserializeHandlerArguments,
  DeserializeHandlerOptions,
  DeserializeMiddleware,
  HandlerExecutionContext,
  MetadataBearer,
} from "@smithy/types";
import { GOVERNED_CALL, type GovernedCall } from "./governed-call.js";

export const responseCaptureMiddlewareOptions: DeserializeHandlerOptions & { name: string; override: boolean } = {
  name: "bedrockWardenResponseCaptureMiddleware",
  step: "deserialize",
  tags: ["BEDROCK_WARDEN"],
  override: false,
};

/** The response-capture middleware factory. */
export function responseCaptureMiddleware(): DeserializeMiddleware<any, MetadataBearer> {
  return (next: DeserializeHandler<any, MetadataBearer>, context: HandlerExecutionContext) => async (args: DeserializeHandlerArguments<any>) => {
    const call = (context as Record<symbol, unknown>)[GOVERNED_CALL] as GovernedCall | undefined;
    try {
      const result = await next(args);
      capture(call, result.response);
      return result;
    } catch (error) {
      // An error response has a body too; it is read by now, but its headers are still worth having.
      capture(call, (error as { $response?: unknown }).$response);
      throw error;
    }
  };
}

function capture(call: GovernedCall | undefined, response: unknown): void {
  if (!call || typeof response !== "object" || response === null) return;
  const { body, headers } = response as { body?: unknown; headers?: unknown };
  if (typeof (body as { destroy?: unknown })?.destroy === "function") call.responseBody = body as GovernedCall["responseBody"];
  if (typeof headers === "object" && headers !== null) call.responseHeaders = headers as Record<string, string>;
}
