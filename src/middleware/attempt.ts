/**
 * The attempt middleware (finalizeRequest step, right after the SDK signs): runs once per HTTP
 * attempt, retries included. Before the request leaves, its signature must match the credentials
 * the call was authorized with ({@link checkSignature}); when the attempt returns, its raw
 * response is kept on the call ({@link captureResponse}). One middleware for both: each one the
 * stack holds costs every call its share of the SDK's per-call stack resolution.
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
import { SigningMismatchError } from "../errors.js";
import type { Governance } from "../governance.js";
import { currentScope } from "../identity/call-scope.js";
import { commandSpec } from "../policy/commands.js";
import { entityRef, unevaluatedDenial } from "../policy/decision.js";
import { NAMESPACE } from "../policy/request-builder.js";
import { startCallSpan } from "../telemetry/call-span.js";
import { GOVERNED_CALL, GovernedCall } from "./governed-call.js";
import { captureResponse } from "./response-capture.js";
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
export function attemptMiddleware(governance?: Governance): FinalizeRequestMiddleware<any, MetadataBearer> {
  return (next: FinalizeHandler<any, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: FinalizeHandlerArguments<any>): Promise<FinalizeHandlerOutput<MetadataBearer>> => {
      const call = (context as Record<symbol, unknown>)[GOVERNED_CALL] as GovernedCall | undefined;
      if (call === undefined && governance !== undefined) stopUngoverned(governance, context);
      checkSignature(call, args.request);
      if (call !== undefined) call.requestBytes = bodyBytes((args.request as { body?: unknown } | undefined)?.body);
      try {
        const result = await next(args);
        captureResponse(call, result.response);
        return result;
      } catch (error) {
        // An error response has a body too; it is read by now, but its headers are still worth having.
        captureResponse(call, (error as { $response?: unknown } | undefined)?.$response);
        throw error;
      }
    };
}

/** The size of a request body as sent (a string, bytes; a stream or nothing: 0). */
function bodyBytes(body: unknown): number {
  if (typeof body === "string") return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return 0;
}

/**
 * A request that reached this point without passing the authorization middleware (it was removed,
 * or replaced under its name): stopped, and — since no call recorded it — recorded here, one span
 * and one denial, so that what was stopped is in the evidence.
 */
function stopUngoverned(governance: Governance, context: HandlerExecutionContext): never {
  const commandName = typeof context.commandName === "string" ? context.commandName : "(unknown command)";
  const spec = commandSpec(commandName);
  const scope = currentScope();
  const call = new GovernedCall(governance, commandName, startCallSpan(governance.tracer, commandName, spec, {}, false), scope.identity, scope, {});
  const reason = "it did not pass the authorization middleware (removed from the client's stack, or replaced under its name)";
  const error = new SigningMismatchError(`bedrock-warden stopped a call before sending it: ${reason}`);
  call.decided(
    unevaluatedDenial({
      principal: scope.identity ? entityRef(`${NAMESPACE}::Workload`, scope.identity.id) : "(no workload identity)",
      action: spec ? entityRef(`${NAMESPACE}::Action`, spec.action) : "(unknown action)",
      resource: "(not read)",
      reason,
      errors: [reason],
      policySetVersion: governance.engine.version,
    }),
  );
  call.finish("denied", error);
  throw error;
}
