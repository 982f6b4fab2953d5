/**
 * The signature check (finalizeRequest step, right after the SDK signs): the request about to be
 * sent must be signed with exactly the credentials its decision was made for — the same access
 * key (a brokered call: the key issued for its own identity and path), a session token exactly when
 * they are temporary, a bearer token exactly when a Bedrock API key was authorized. Anything else
 * stops the call before it leaves the process: no call goes out unsigned or under another identity.
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
import type { CredentialFacts } from "../credentials/credential-facts.js";
import { GOVERNED_CALL, type GovernedCall } from "./governed-call.js";

export const signatureCheckMiddlewareOptions: RelativeMiddlewareOptions & { name: string } = {
  name: "bedrockWardenSignatureCheckMiddleware",
  relation: "after",
  toMiddleware: "httpSigningMiddleware",
  tags: ["BEDROCK_WARDEN"],
  override: false,
};

const SIGV4 = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\//;

/** The middleware factory, in the SDK's style (added by the governance plugin). */
export function signatureCheckMiddleware(): FinalizeRequestMiddleware<any, MetadataBearer> {
  return (next: FinalizeHandler<any, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: FinalizeHandlerArguments<any>): Promise<FinalizeHandlerOutput<MetadataBearer>> => {
      const call = (context as Record<symbol, unknown>)[GOVERNED_CALL] as GovernedCall | undefined;
      const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers;
      const problem = call?.credentials === undefined ? "it was not authorized with any credentials" : signingProblem(headers, call.credentials);
      if (problem !== undefined) throw new SigningMismatchError(`bedrock-warden stopped a call before sending it: ${problem}`);
      return next(args);
    };
}

/** What is wrong with how the request is signed, or undefined when it is signed as authorized. */
export function signingProblem(headers: Record<string, string> | undefined, expected: CredentialFacts): string | undefined {
  let authorization: string | undefined;
  let sessionToken: string | undefined;
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower === "authorization") authorization = value;
    else if (lower === "x-amz-security-token") sessionToken = value;
  }
  if (authorization === undefined) return "the request is not signed";
  if (expected.kind === "bearer") {
    return /^Bearer\s/i.test(authorization) ? undefined : "it was authorized for a Bedrock API key but is signed with SigV4";
  }
  const accessKeyId = SIGV4.exec(authorization)?.[1];
  if (accessKeyId === undefined) return `it was authorized for ${expected.kind} AWS credentials but is not signed with SigV4`;
  if (accessKeyId !== expected.accessKeyId) return "it is signed with another access key than the one it was authorized with";
  if ((expected.kind === "temporary") !== (sessionToken !== undefined)) {
    return expected.kind === "temporary" ? "it was authorized for temporary credentials but carries no session token" : "it carries a session token its credentials do not have";
  }
  return undefined;
}
