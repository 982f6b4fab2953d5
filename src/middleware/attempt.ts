/**
 * The attempt middleware (finalizeRequest step, right after the SDK signs): runs once per HTTP
 * attempt, retries included. Before the request leaves, its signature must match the credentials
 * the call was authorized with ({@link checkSignature}). Synchronous, and it adds no promise of
 * its own: with an async context in use (`runAs`), every promise a call creates costs it. The
 * attempt's raw response reaches the authorization middleware with the call's result, which keeps it.
 * @module
 */
import type {
  FinalizeHandler,
  FinalizeHandlerArguments,
  FinalizeHandlerOutput,
  FinalizeRequestMiddleware,
  HandlerExecutionContext,
  MetadataBearer,
  RelativeMiddlewareOptions,
} from "@smithy/types";
import { GOVERNED_CALL, type GovernedCall } from "./governed-call.js";
import { checkSignature } from "./signature-check.js";

export const attemptMiddlewareOptions: RelativeMiddlewareOptions & { name: string } = {
  name: "bedrockWardenAttemptMiddleware",
  // The two middleware this one replaced (earlier versions): a stack anchored to their names still finds it.
  aliases: ["bedrockWardenSignatureCheckMiddleware", "bedrockWardenResponseCaptureMiddleware"],
  relation: "after",
  toMiddleware: "httpSigningMiddleware",
  tags: ["BEDROCK_WARDEN"],
  override: false,
};

/** The middleware factory, in the SDK's style (added by the governance plugin). */
export function attemptMiddleware(): FinalizeRequestMiddleware<any, MetadataBearer> {
  return (next: FinalizeHandler<any, MetadataBearer>, context: HandlerExecutionContext) =>
    (args: FinalizeHandlerArguments<any>): Promise<FinalizeHandlerOutput<MetadataBearer>> => {
      try {
        checkSignature((context as Record<symbol, unknown>)[GOVERNED_CALL] as GovernedCall | undefined, args.request);
        return next(args);
      } catch (error) {
        // A rejection, as from any async middleware: the one before may not be an async function.
        return Promise.reject(error);
      }
    };
}
