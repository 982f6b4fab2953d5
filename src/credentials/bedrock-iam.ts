/**
 * What AWS IAM checks for each Bedrock Runtime operation: the IAM action and the ARN of the
 * resource it is checked against. Session policies are written in these terms, and the embedded
 * endpoint enforces them the same way.
 * @module
 */
import { modelResource } from "../policy/model-resource.js";

/**
 * The IAM action AWS authorizes for each Bedrock Runtime operation (Converse is authorized as
 * `bedrock:InvokeModel`, ConverseStream as `bedrock:InvokeModelWithResponseStream`,
 * StartAsyncInvoke as `bedrock:InvokeModel`).
 */
export const IAM_ACTIONS: Readonly<Record<string, string>> = Object.freeze({
  Converse: "bedrock:InvokeModel",
  ConverseStream: "bedrock:InvokeModelWithResponseStream",
  InvokeModel: "bedrock:InvokeModel",
  InvokeModelWithResponseStream: "bedrock:InvokeModelWithResponseStream",
  InvokeModelWithBidirectionalStream: "bedrock:InvokeModelWithBidirectionalStream",
  StartAsyncInvoke: "bedrock:InvokeModel",
  CountTokens: "bedrock:CountTokens",
  ApplyGuardrail: "bedrock:ApplyGuardrail",
  InvokeGuardrailChecks: "bedrock:InvokeGuardrailChecks",
  GetAsyncInvoke: "bedrock:GetAsyncInvoke",
  ListAsyncInvokes: "bedrock:ListAsyncInvokes",
});

/** The IAM action of a Bedrock Runtime operation (its Cedar action name), or undefined. */
export function iamActionOf(operation: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(IAM_ACTIONS, operation) ? IAM_ACTIONS[operation] : undefined;
}

/**
 * The ARN IAM checks when a call names `modelId` in `region` of `account`: a foundation model
 * (`arn:aws:bedrock:<region>::foundation-model/<id>`), a system inference profile
 * (`arn:aws:bedrock:<region>:<account>:inference-profile/<id>`), or the ARN as given.
 */
export function modelArn(modelId: string, region: string, account: string, partition = "aws"): string {
  if (modelId.startsWith("arn:")) return modelId;
  const model = modelResource(modelId);
  if (model.kind === "inference-profile") return `arn:${partition}:bedrock:${region}:${account}:inference-profile/${model.id}`;
  return `arn:${partition}:bedrock:${region}::foundation-model/${model.id}`;
}
