/**
 * The catalogue of Bedrock Runtime commands bedrock-warden governs: for each, its Cedar action,
 * how to find its resource in the input, and what its input tells the context. A command missing
 * from this table is denied (see `UnknownCommandError`): the SDK adds commands, and a security
 * library must not wave through what it has never seen.
 * @module
 */
import { invokeModelBodyFacts } from "./invoke-model-body.js";
import { modelResource, type ModelResource } from "./model-resource.js";
import { asRecord } from "../records.js";

/** A Cedar entity as the engine receives it. */
export interface ResourceEntity {
  readonly type: "Model" | "Guardrail" | "AsyncInvocation" | "Runtime";
  readonly id: string;
  readonly attrs: Readonly<Record<string, string>>;
  /** Parent entities, as [type, id] pairs. */
  readonly parents: readonly (readonly [string, string])[];
}

/** What a command's input contributes to the Cedar context. */
export interface InputFacts {
  readonly maxTokens?: number;
  readonly toolsOffered: readonly string[];
  /** The request offers tools whose names cannot be read (an opaque body with a tools field). */
  readonly toolsUnreadable?: boolean;
  readonly guardrail?: string;
  /** The guardrail version the call names (`"DRAFT"` or a number), when it names one. */
  readonly guardrailVersion?: string;
  /**
   * Converse with a guardrail: whether the request marks content with `guardContent` blocks, so
   * that the guardrail evaluates only those blocks, not the rest of the conversation.
   */
  readonly guardrailSelective?: boolean;
  /** StartAsyncInvoke: the S3 URI the model's output is written to (`outputDataConfig.s3OutputDataConfig.s3Uri`). */
  readonly outputLocation?: string;
  /** False when the request payload could not be read (InvokeModel with an unknown or oversized body). */
  readonly payloadInspected: boolean;
}

/** How one command is governed. */
export interface CommandSpec {
  /** The Cedar action id, `Bedrock::Action::"<action>"`. */
  readonly action: string;
  /** The GenAI operation name for commands that make a model generate. */
  readonly genAiOperation?: "chat" | "text_completion";
  readonly streaming: boolean;
  readonly actionType: "read" | "mutate";
  /** Reads the resource from the input; throws {@link InvalidCommandInput} when it cannot. */
  resource(input: Record<string, unknown>): ResourceEntity;
  facts(input: Record<string, unknown>): InputFacts;
}

/** The input does not name what the command acts on: deny, saying which field. */
export class InvalidCommandInput extends Error {}

const NO_FACTS: InputFacts = Object.freeze({ toolsOffered: Object.freeze([]) as readonly string[], payloadInspected: true });

function requiredString(input: Record<string, unknown>, field: string): string {
  const value = input[field];
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidCommandInput(`input.${field} must be a non-empty string`);
  }
  return value;
}

const MODEL_ENTITY_CACHE_SIZE = 1024;
const modelEntities = new Map<string, ResourceEntity>();

/** Model ids repeat from call to call: normalize each once (bounded; emptied when full). */
function modelEntity(input: Record<string, unknown>): ResourceEntity {
  const modelId = requiredString(input, "modelId");
  let entity = modelEntities.get(modelId);
  if (entity === undefined) {
    entity = Object.freeze(modelToEntity(modelResource(modelId)));
    if (modelEntities.size >= MODEL_ENTITY_CACHE_SIZE) modelEntities.clear();
    modelEntities.set(modelId, entity);
  }
  return entity;
}

/** The Cedar entity of a model: a member of its base model (for a profile) and of its provider. */
export function modelToEntity(model: ModelResource): ResourceEntity {
  const { id, ...attrs } = model;
  const parents: (readonly [string, string])[] = [];
  if (model.baseModel) parents.push(["Model", model.baseModel]);
  if (model.provider) parents.push(["Provider", model.provider]);
  return { type: "Model", id, attrs: attrs as Record<string, string>, parents };
}

/** A guardrail's ARN anywhere in a text: a policy naming one could never match (see {@link guardrailId}). */
export const GUARDRAIL_ARN_IN_TEXT = /arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{12}:guardrail\/([a-z0-9]+)/;
const GUARDRAIL_ARN = new RegExp(`^${GUARDRAIL_ARN_IN_TEXT.source}$`);

/**
 * A guardrail as policies name it: its id, also when the call gives its ARN (Bedrock takes both),
 * so that `Bedrock::Guardrail::"<id>"` and `context.guardrail == "<id>"` hold for either form. A
 * policy that names a guardrail by its ARN is refused at load, since no call would match it.
 */
function guardrailId(identifier: string): string {
  return GUARDRAIL_ARN.exec(identifier)?.[1] ?? identifier;
}

const RUNTIME: ResourceEntity = Object.freeze({ type: "Runtime", id: "bedrock-runtime", attrs: {}, parents: [] });

function converseFacts(input: Record<string, unknown>): InputFacts {
  const inference = asRecord(input["inferenceConfig"]);
  const maxTokens = inference?.["maxTokens"];
  const guardrailConfig = asRecord(input["guardrailConfig"]);
  const guardrail = guardrailConfig?.["guardrailIdentifier"];
  const guardrailVersion = guardrailConfig?.["guardrailVersion"];
  const tools = asArray(asRecord(input["toolConfig"])?.["tools"]);
  const toolsOffered: string[] = [];
  for (const tool of tools) {
    const name = converseToolName(tool);
    if (name !== undefined) toolsOffered.push(name);
  }
  // Read whole; but a model that cannot be attributed to a provider (an application inference
  // profile, a provisioned model, a custom prompt router ...) is opaque to the policies all the same.
  const facts: { -readonly [K in keyof InputFacts]: InputFacts[K] } = { toolsOffered, payloadInspected: modelEntity(input).attrs["provider"] !== undefined };
  if (isCount(maxTokens)) facts.maxTokens = maxTokens;
  if (typeof guardrail === "string") {
    facts.guardrail = guardrailId(guardrail);
    if (typeof guardrailVersion === "string") facts.guardrailVersion = guardrailVersion;
    facts.guardrailSelective = marksGuardContent(input);
  }
  return facts;
}

/** Whether a Converse request holds a `guardContent` block in its messages or its system prompt. */
function marksGuardContent(input: Record<string, unknown>): boolean {
  for (const message of asArray(input["messages"])) {
    for (const block of asArray(asRecord(message)?.["content"])) if (asRecord(block)?.["guardContent"] !== undefined) return true;
  }
  for (const block of asArray(input["system"])) if (asRecord(block)?.["guardContent"] !== undefined) return true;
  return false;
}

function converseToolName(tool: unknown): string | undefined {
  const entry = asRecord(tool);
  const name = asRecord(entry?.["toolSpec"])?.["name"] ?? asRecord(entry?.["systemTool"])?.["name"];
  return typeof name === "string" ? name : undefined;
}

/** InvokeModel: what the body says, read in the formats known for the model's provider. */
function invokeModelFacts(input: Record<string, unknown>): InputFacts {
  const guardrail = input["guardrailIdentifier"];
  const guardrailVersion = input["guardrailVersion"];
  const provider = modelEntity(input).attrs["provider"];
  const body = invokeModelBodyFacts(input["body"], provider);
  if (body.duplicateKey) {
    throw new InvalidCommandInput("input.body writes an object key twice; parsers disagree on which value wins, so what it asks for cannot be decided: send each key once");
  }
  return {
    ...(typeof guardrail === "string" && { guardrail: guardrailId(guardrail) }),
    ...(typeof guardrail === "string" && typeof guardrailVersion === "string" && { guardrailVersion }),
    ...(body.maxTokens !== undefined && { maxTokens: body.maxTokens }),
    toolsOffered: body.toolsOffered,
    ...(body.toolsUnreadable && { toolsUnreadable: true }),
    payloadInspected: body.inspected,
  };
}

/**
 * CountTokens: what the request it counts says — a Converse request or an InvokeModel body, read
 * as those commands read theirs, for the same model.
 */
function countTokensFacts(input: Record<string, unknown>): InputFacts {
  const counted = asRecord(input["input"]);
  const converse = asRecord(counted?.["converse"]);
  if (converse !== undefined) return converseFacts({ ...converse, modelId: input["modelId"] });
  const invokeModel = asRecord(counted?.["invokeModel"]);
  if (invokeModel !== undefined) return invokeModelFacts({ modelId: input["modelId"], body: invokeModel["body"] });
  return NOT_INSPECTED;
}

/** Nothing of the request was read: no tools seen, and the policies told so. */
const NOT_INSPECTED: InputFacts = Object.freeze({ toolsOffered: Object.freeze([]) as readonly string[], payloadInspected: false });

/** A bucket name as S3 allows it today (lowercase letters, digits, dots, hyphens; 3–63), then an optional key. */
const S3_URI = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:\/[^\u0000-\u001f\u007f]*)?$/;

/**
 * StartAsyncInvoke's output S3 URI, checked to be one: a policy matching `like "s3://bucket/*"`
 * must not be met by text S3 would read as another bucket, or not at all.
 */
function outputLocationOf(input: Record<string, unknown>): string {
  const config = input["outputDataConfig"];
  const s3 = typeof config === "object" && config !== null ? (config as Record<string, unknown>)["s3OutputDataConfig"] : undefined;
  const uri = typeof s3 === "object" && s3 !== null ? (s3 as Record<string, unknown>)["s3Uri"] : undefined;
  if (typeof uri !== "string" || !S3_URI.test(uri) || uri.length > 1024) {
    throw new InvalidCommandInput("input.outputDataConfig.s3OutputDataConfig.s3Uri must be an S3 URI: s3://<bucket>/<prefix>, a lowercase bucket name");
  }
  return uri;
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

const modelInvocation = (
  action: string,
  streaming: boolean,
  facts: (input: Record<string, unknown>) => InputFacts,
  genAiOperation: CommandSpec["genAiOperation"],
): CommandSpec => ({ action, streaming, actionType: "read", genAiOperation, resource: modelEntity, facts });

/**
 * Every command of `@aws-sdk/client-bedrock-runtime` this version governs, by the SDK's
 * `commandName`. A test fails when the installed SDK has a command missing here.
 */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = Object.freeze({
  ConverseCommand: modelInvocation("Converse", false, converseFacts, "chat"),
  ConverseStreamCommand: modelInvocation("ConverseStream", true, converseFacts, "chat"),
  InvokeModelCommand: modelInvocation("InvokeModel", false, invokeModelFacts, "text_completion"),
  InvokeModelWithResponseStreamCommand: modelInvocation("InvokeModelWithResponseStream", true, invokeModelFacts, "text_completion"),
  InvokeModelWithBidirectionalStreamCommand: {
    action: "InvokeModelWithBidirectionalStream",
    streaming: true,
    actionType: "read",
    resource: modelEntity,
    // The request body is a stream the caller writes after the call starts: nothing to inspect up front.
    facts: () => NOT_INSPECTED,
  },
  StartAsyncInvokeCommand: {
    action: "StartAsyncInvoke",
    streaming: false,
    // It writes the model's output to the caller's S3 location.
    actionType: "mutate",
    resource: modelEntity,
    // modelInput is the model's own JSON (a video or an image request, per model), not read here;
    // where the output goes is, so that a policy can keep it in the workload's own bucket.
    facts: (input) => ({ ...NOT_INSPECTED, outputLocation: outputLocationOf(input) }),
  },
  CountTokensCommand: { action: "CountTokens", streaming: false, actionType: "read", resource: modelEntity, facts: countTokensFacts },
  ApplyGuardrailCommand: {
    action: "ApplyGuardrail",
    streaming: false,
    actionType: "read",
    resource: (input): ResourceEntity => {
      const version = input["guardrailVersion"];
      return {
        type: "Guardrail",
        id: guardrailId(requiredString(input, "guardrailIdentifier")),
        attrs: typeof version === "string" ? { version } : {},
        parents: [],
      };
    },
    facts: (input) => {
      const version = input["guardrailVersion"];
      return { ...NO_FACTS, guardrail: guardrailId(requiredString(input, "guardrailIdentifier")), ...(typeof version === "string" && { guardrailVersion: version }) };
    },
  },
  InvokeGuardrailChecksCommand: { action: "InvokeGuardrailChecks", streaming: false, actionType: "read", resource: () => RUNTIME, facts: () => NO_FACTS },
  GetAsyncInvokeCommand: {
    action: "GetAsyncInvoke",
    streaming: false,
    actionType: "read",
    resource: (input) => ({ type: "AsyncInvocation", id: asyncInvocationArn(requiredString(input, "invocationArn")), attrs: {}, parents: [] }),
    facts: () => NO_FACTS,
  },
  ListAsyncInvokesCommand: { action: "ListAsyncInvokes", streaming: false, actionType: "read", resource: () => RUNTIME, facts: () => NO_FACTS },
});

/** An async invocation's ARN as Bedrock writes it: lowercase, so that one invocation is one entity to policies. */
const ASYNC_INVOCATION_ARN = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:async-invoke\/[a-z0-9]+$/;

function asyncInvocationArn(arn: string): string {
  if (!ASYNC_INVOCATION_ARN.test(arn)) {
    throw new InvalidCommandInput("input.invocationArn must be an async invocation ARN as StartAsyncInvoke returned it: arn:aws:bedrock:<region>:<account>:async-invoke/<id>, in lowercase");
  }
  return arn;
}

/** The governed spec of a command, or undefined for a command this version does not know. */
export function commandSpec(commandName: string): CommandSpec | undefined {
  return Object.prototype.hasOwnProperty.call(COMMANDS, commandName) ? COMMANDS[commandName] : undefined;
}
