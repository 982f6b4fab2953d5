/**
 * `bedrock-warden/local-endpoint`: an embedded Amazon Bedrock Runtime endpoint for demos and tests,
 * and a local STS endpoint that issues temporary credentials for it.
 *
 * It speaks the service's wire protocol (restJson1 and AWS event streams, over HTTP/1.1 and
 * cleartext HTTP/2 on one port) and verifies SigV4 signatures for real, so the unmodified AWS SDK v3
 * client runs its whole middleware pipeline offline, against a scripted model. The STS endpoint
 * (`startLocalSts`) speaks awsQuery to the unmodified STS client: AssumeRole and
 * AssumeRoleWithWebIdentity issue keys that the Bedrock endpoint accepts until they expire, within
 * their session policy.
 *
 * @example
 * ```ts
 * import { BedrockRuntimeClient, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
 * import { startLocalBedrock } from "bedrock-warden/local-endpoint";
 *
 * const server = await startLocalBedrock();
 * server.reply = () => ({ toolUses: [{ toolUseId: "t1", name: "lookup", input: { q: "x" } }], chunkSize: 2 });
 * const client = new BedrockRuntimeClient({ endpoint: server.url, region: server.region, credentials: server.credentials });
 * const { stream } = await client.send(
 *   new ConverseStreamCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", messages: [{ role: "user", content: [{ text: "Hi" }] }] }),
 * );
 * for await (const event of stream ?? []) console.log(event);
 * console.log(server.requests[0]?.signature.status); // "valid"
 * client.destroy();
 * await server.close();
 * ```
 * @module
 */
export { startLocalBedrock } from "./server.js";
export { startLocalSts } from "./sts.js";
export { LOCAL_BEDROCK_CREDENTIALS } from "./auth.js";
export { echoReply } from "./render.js";
export type {
  BedrockOperation,
  IssuedSession,
  LocalBedrock,
  LocalBedrockOptions,
  LocalCredentials,
  LocalRole,
  LocalSts,
  LocalStsOptions,
  ModelReply,
  ReceivedRequest,
  ReplyError,
  ReplyFunction,
  RequestAuthorization,
  SignatureCheck,
  SignatureStatus,
  StsFailure,
  StsOperation,
  StsReceivedRequest,
  ToolUseReply,
  WebIdentityTrust,
} from "./types.js";
export { startLocalVerifiedPermissions } from "./verified-permissions.js";
export type {
  AvpEntity,
  LocalAvpPolicy,
  LocalPolicyStore,
  LocalVerifiedPermissions,
  LocalVerifiedPermissionsOptions,
  VerifiedPermissionsFailure,
  VerifiedPermissionsReceivedRequest,
} from "./verified-permissions.js";
