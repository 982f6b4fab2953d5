/**
 * The signature check (in the attempt middleware, right after the SDK signs): the request about to be
 * sent must be signed with exactly the credentials its decision was made for — the same access
 * key (a brokered call: the key issued for its own identity and path), a session token exactly when
 * they are temporary, a bearer token exactly when a Bedrock API key was authorized — for the region
 * decided, address the model decided, and carry the attribution written. Anything else stops the call before it leaves the
 * process: no call goes out unsigned, under another identity, or elsewhere than decided.
 * @module
 */
import { SigningMismatchError } from "../errors.js";
import type { CredentialFacts } from "../credentials/credential-facts.js";
import type { GovernedCall } from "./governed-call.js";

const AUTHORIZATION = "authorization";
const SESSION_TOKEN = "x-amz-security-token";
const METADATA_HEADER = "x-amzn-bedrock-request-metadata";
const SIGV4 = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/\d{8}\/([^/,\s]+)\//;
/** An AWS Bedrock Runtime host names its region: `bedrock-runtime[-fips].<region>.amazonaws.com`, VPC endpoints included. */
const AWS_HOST = /(?:^|\.)bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$/;

/**
 * Stops the request unless it is signed with exactly the credentials its call was authorized
 * with, for the region decided, to the model decided, still carrying the attribution written (a
 * request that belongs to no authorized call is stopped too).
 *
 * @throws {@link SigningMismatchError} naming what is wrong.
 */
export function checkSignature(call: GovernedCall | undefined, request: unknown): void {
  const { headers, hostname, path } = (request ?? {}) as { headers?: Record<string, string>; hostname?: unknown; path?: unknown };
  let problem: string | undefined;
  if (call?.credentials === undefined) problem = "it was not authorized with any credentials";
  else {
    const signed = signedHeaders(headers);
    problem =
      signatureProblem(signed, call.credentials) ??
      regionOf(signed.authorization, hostname, call.region) ??
      modelProblem(call, path) ??
      attributionProblem(call, signed.metadata, (request as { body?: unknown }).body);
  }
  if (problem !== undefined) throw new SigningMismatchError(`bedrock-warden stopped a call before sending it: ${problem}`);
}

/**
 * Whether the workload and decision the call wrote into its request metadata are still in the
 * request as signed (Converse: the body; InvokeModel: the metadata header): a middleware after
 * ours may not rewrite whom Bedrock's invocation logs name.
 */
export function attributionProblem(call: Pick<GovernedCall, "commandName" | "attributionMarks">, metadataHeader: string | undefined, body: unknown): string | undefined {
  const marks = call.attributionMarks;
  if (marks.length === 0) return undefined;
  let carried: string | Buffer | undefined;
  if (call.commandName === "InvokeModelCommand" || call.commandName === "InvokeModelWithResponseStreamCommand") carried = metadataHeader;
  else if (typeof body === "string") carried = body;
  else if (body instanceof Uint8Array) carried = Buffer.from(body.buffer, body.byteOffset, body.byteLength); // searched as bytes: the marks are ASCII
  for (const mark of marks) {
    if (carried === undefined || !carried.includes(mark)) return "the workload or decision its request metadata names was changed after it was decided";
  }
  return undefined;
}

/** The commands whose path names the model: `/model/{modelId}/<operation>`. */
const MODEL_IN_PATH = new Set([
  "ConverseCommand",
  "ConverseStreamCommand",
  "InvokeModelCommand",
  "InvokeModelWithResponseStreamCommand",
  "InvokeModelWithBidirectionalStreamCommand",
  "CountTokensCommand",
]);
const MODEL_SEGMENT = "/model/";

/**
 * Whether the request's path names another model than the call's decided input (a middleware
 * after ours replacing the input, or the path): the model is what the call was decided on.
 */
export function modelProblem(call: Pick<GovernedCall, "commandName" | "sentInput">, path: unknown): string | undefined {
  if (!MODEL_IN_PATH.has(call.commandName)) return undefined;
  const decided = call.sentInput?.["modelId"];
  if (typeof path !== "string" || typeof decided !== "string") return "its path or its decided model cannot be read";
  const at = path.lastIndexOf(MODEL_SEGMENT);
  const end = at === -1 ? -1 : path.indexOf("/", at + MODEL_SEGMENT.length);
  let model: string | undefined;
  try {
    model = end === -1 ? undefined : decodeURIComponent(path.slice(at + MODEL_SEGMENT.length, end));
  } catch {
    model = undefined;
  }
  return model === decided ? undefined : `its path names another model than the one decided (${JSON.stringify(decided)})`;
}

/**
 * What says the request goes to another region than the one decided (`context.region`): the SigV4
 * credential scope, and an AWS host's region. A custom endpoint's host says nothing and is not read.
 */
export function regionProblem(headers: Record<string, string> | undefined, hostname: unknown, decided: string | undefined): string | undefined {
  return regionOf(signedHeaders(headers).authorization, hostname, decided);
}

function regionOf(authorization: string | undefined, hostname: unknown, decided: string | undefined): string | undefined {
  const scope = authorization === undefined ? undefined : SIGV4.exec(authorization)?.[2];
  if (scope !== undefined && scope !== decided) return `it is signed for region ${scope}, but was decided for region ${decided ?? "(none)"}`;
  const host = typeof hostname === "string" ? AWS_HOST.exec(hostname.toLowerCase())?.[1] : undefined;
  if (host !== undefined && host !== decided) return `it goes to ${String(hostname)}, in region ${host}, but was decided for region ${decided ?? "(none)"}`;
  return undefined;
}

/** What is wrong with how the request is signed, or undefined when it is signed as authorized. */
export function signingProblem(headers: Record<string, string> | undefined, expected: CredentialFacts): string | undefined {
  return signatureProblem(signedHeaders(headers), expected);
}

function signatureProblem({ authorization, sessionToken }: { authorization?: string; sessionToken?: string }, expected: CredentialFacts): string | undefined {
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

/**
 * The headers the checks read, in one pass, their names matched in any case (only names of the
 * right length are lowercased): the signature, the session token and the request metadata.
 */
function signedHeaders(headers: Record<string, string> | undefined): { authorization?: string; sessionToken?: string; metadata?: string } {
  let authorization: string | undefined;
  let sessionToken: string | undefined;
  let metadata: string | undefined;
  for (const name of Object.keys(headers ?? {})) {
    if (name.length === AUTHORIZATION.length && name.toLowerCase() === AUTHORIZATION) authorization = headers![name];
    else if (name.length === SESSION_TOKEN.length && name.toLowerCase() === SESSION_TOKEN) sessionToken = headers![name];
    else if (name.length === METADATA_HEADER.length && name.toLowerCase() === METADATA_HEADER) metadata = headers![name];
  }
  return { authorization, sessionToken, metadata };
}
