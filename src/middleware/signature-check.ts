/**
 * The signature check (in the attempt middleware, right after the SDK signs): the request about to be
 * sent must be signed with exactly the credentials its decision was made for — the same access
 * key (a brokered call: the key issued for its own identity and path), a session token exactly when
 * they are temporary, a bearer token exactly when a Bedrock API key was authorized. Anything else
 * stops the call before it leaves the process: no call goes out unsigned or under another identity.
 * @module
 */
import { SigningMismatchError } from "../errors.js";
import type { CredentialFacts } from "../credentials/credential-facts.js";
import type { GovernedCall } from "./governed-call.js";

const AUTHORIZATION = "authorization";
const SESSION_TOKEN = "x-amz-security-token";
const SIGV4 = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\//;

/**
 * Stops the request unless it is signed with exactly the credentials its call was authorized
 * with (a request that belongs to no authorized call is stopped too).
 *
 * @throws {@link SigningMismatchError} naming what is wrong.
 */
export function checkSignature(call: GovernedCall | undefined, request: unknown): void {
  const headers = (request as { headers?: Record<string, string> } | undefined)?.headers;
  const problem = call?.credentials === undefined ? "it was not authorized with any credentials" : signingProblem(headers, call.credentials);
  if (problem !== undefined) throw new SigningMismatchError(`bedrock-warden stopped a call before sending it: ${problem}`);
}

/** What is wrong with how the request is signed, or undefined when it is signed as authorized. */
export function signingProblem(headers: Record<string, string> | undefined, expected: CredentialFacts): string | undefined {
  let authorization: string | undefined;
  let sessionToken: string | undefined;
  // Header names are matched in any case; only names of the right length are lowercased.
  for (const name of Object.keys(headers ?? {})) {
    if (name.length === AUTHORIZATION.length && name.toLowerCase() === AUTHORIZATION) authorization = headers![name];
    else if (name.length === SESSION_TOKEN.length && name.toLowerCase() === SESSION_TOKEN) sessionToken = headers![name];
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
