/**
 * A decision case, as `bedrock-warden test` and `explain` read it: who calls (an identity, how it
 * was proven, its scope and task), what (a command and its input, or a tool at a phase), with
 * which credentials, and what the decision should be. Each case is decided on the library's own
 * call path — `decideCall` for commands (their tool offers, then the call), as the authorization
 * middleware decides them; `authorizeTool` for tools — inside `runAs` / `runTask`, so that a case decides
 * exactly as the same call would at run time.
 * @module
 */
import { z } from "zod";
import type { CredentialFacts } from "../credentials/credential-facts.js";
import { ConfigurationError } from "../errors.js";
import type { Governance } from "../governance.js";
import { attestIdentity } from "../identity/authentication.js";
import { currentScope, runAs, type ActiveScope, type CallScope } from "../identity/call-scope.js";
import { runTask } from "../identity/run-task.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import { snapshotInput } from "../middleware/input-snapshot.js";
import { decideCall } from "../policy/call-decision.js";
import type { CedarEngine, KeptDecision } from "../policy/cedar-engine.js";
import { COMMANDS, commandSpec, type InputFacts } from "../policy/commands.js";
import { entityRef, unevaluatedDenial, type Decision } from "../policy/decision.js";
import { NAMESPACE, TOOL_TYPE } from "../policy/request-builder.js";
import { expiredProof } from "../policy/principal-context.js";
import type { CedarRequest } from "../policy/request-shape.js";
import { authorizeTool, type ToolPhase } from "../tools/authorize-tool.js";
import type { ToolOffers } from "../tools/tool-offers.js";
import { UNDECLARED_TOOL_ACTION } from "../tools/tool-definitions.js";
import { describeZodError } from "../validation.js";
import type { Admission } from "../budgets/usage-context.js";
import { killedDenial } from "../budgets/kill-switch.js";

/** The default region of a case that names none. */
export const DEFAULT_REGION = "us-east-1";
/** The lifetime of temporary credentials (and of a verified identity's token) a case does not give. */
export const DEFAULT_LIFETIME_SECONDS = 3600;
/** A lifetime a case may give: within ten years either way (a Date holds it; the runtime never sees longer). */
const lifetimeSeconds = z
  .number({ error: "must be a number of seconds" })
  .int("must be a whole number of seconds")
  .min(-315_360_000, "must be at least -315360000 (ten years ago)")
  .max(315_360_000, "must be at most 315360000 (ten years)");

const nonEmpty = (what: string) => z.string({ error: `must be ${what}` }).min(1, "must not be empty");

const credentialsSchema = z
  .object({
    kind: z.enum(["temporary", "long-term", "bearer"], { error: 'must be "temporary", "long-term" or "bearer"' }),
    brokered: z.boolean({ error: "must be true or false" }).optional(),
    expiresInSeconds: lifetimeSeconds.optional(),
  })
  .strict()
  .refine((c) => c.kind === "temporary" || (c.expiresInSeconds === undefined && c.brokered === undefined), {
    message: "expiresInSeconds and brokered apply to temporary credentials only",
  });

/**
 * The usage a governance with a usage store would count for the call (`context.usage`), and its
 * kill switch. Without it, the case is decided as by a governance without a store: no
 * `context.usage`, as at run time.
 */
const usageSchema = z
  .object({
    callsLastMinute: z.number({ error: "must be a number of calls" }).int("must be a whole number").min(0, "must be 0 or more"),
    tokensLastHour: z.number({ error: "must be a number of tokens" }).int("must be a whole number").min(0, "must be 0 or more"),
    killed: nonEmpty("the kill switch's reason").optional(),
  })
  .strict();

const authenticationSchema = z
  .object({
    method: nonEmpty('a string, e.g. "oidc" or "spiffe-jwt-svid"').optional(),
    issuer: nonEmpty("the token's issuer (iss)"),
    subject: nonEmpty("the token's subject (sub)").optional(),
    audience: z.array(nonEmpty("a string"), { error: "must be an array of audiences" }).min(1, "must name at least one audience").optional(),
    expiresInSeconds: lifetimeSeconds.optional(),
    delegation: z
      .object({
        actors: z.array(nonEmpty("a string"), { error: "must be the actors, from the first delegate to the workload" }).min(1, "must name at least one actor"),
        onBehalfOf: nonEmpty("the subject the chain acts for"),
      })
      .strict()
      .optional(),
    spiffe: z.object({ trustDomain: nonEmpty("a trust domain"), path: z.string({ error: "must be a string" }) }).strict().optional(),
  })
  .strict();

const common = {
  name: nonEmpty("a string naming the case"),
  identity: z.record(z.string(), z.unknown(), { error: "must be a workload identity: { id, groups?, environment?, owner?, attributes? }" }),
  authentication: authenticationSchema.optional(),
  scope: z.record(z.string(), z.unknown(), { error: 'must be a call scope: { purpose?, dataSensitivity?, actionType? }' }).optional(),
  task: z.string({ error: "must be a string: runTask's task name" }).optional(),
  region: nonEmpty('a region, e.g. "us-east-1"').optional(),
  credentials: credentialsSchema.optional(),
  usage: usageSchema.optional(),
  expect: z.enum(["allow", "deny"], { error: 'must be "allow" or "deny"' }).optional(),
  expectPolicies: z
    .array(z.string({ error: "must be policy ids" }), { error: "must be an array of policy ids" })
    .refine((ids) => new Set(ids).size === ids.length, "names a policy twice: list each determining policy once")
    .optional(),
};

const commandCaseSchema = z
  .object({
    ...common,
    command: nonEmpty('a Bedrock Runtime command, e.g. "Converse"'),
    input: z.record(z.string(), z.unknown(), { error: "must be the command's input object, e.g. { modelId, messages }" }).optional(),
  })
  .strict();

const toolCaseSchema = z
  .object({
    ...common,
    tool: nonEmpty("a tool name"),
    phase: z.enum(["offer", "call", "execute"], { error: 'must be "offer", "call" or "execute"' }),
    input: z.unknown().optional(),
    toolUseId: nonEmpty("the model's tool call id").optional(),
    serverSide: z.boolean({ error: "must be true or false" }).optional(),
  })
  .strict()
  // As the runtime decides: an offer has no tool call id yet; only an offer says whether AWS runs the tool.
  .refine((c) => c.toolUseId === undefined || c.phase !== "offer", { message: 'applies only to phases "call" and "execute"', path: ["toolUseId"] })
  .refine((c) => c.serverSide === undefined || c.phase === "offer", { message: 'applies only to phase "offer" (a systemTool offered)', path: ["serverSide"] });

type CommonCase = Omit<z.infer<typeof commandCaseSchema>, "command" | "input">;

/** A command case: a Bedrock Runtime command and its input. */
export interface CommandCase extends CommonCase {
  readonly kind: "command";
  /** The SDK's command name, e.g. `"ConverseCommand"`. */
  readonly commandName: string;
  readonly input: Record<string, unknown>;
}

/** A tool case: a tool decided at one phase. */
export interface ToolCase extends CommonCase {
  readonly kind: "tool";
  readonly tool: string;
  readonly phase: ToolPhase;
  readonly input?: unknown;
  readonly toolUseId?: string;
  readonly serverSide?: boolean;
}

export type DecisionCase = CommandCase | ToolCase;

/** What is wrong with a case, in one sentence (naming the field). */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const COMMAND_NAMES = Object.keys(COMMANDS).map((name) => name.replace(/Command$/, ""));

/** Reads one case (a parsed JSON value). */
export function parseCase(value: unknown): Parsed<DecisionCase> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, message: "a case must be a JSON object: { name, identity, command, input, expect } or { name, identity, tool, phase, input?, expect }" };
  }
  const isTool = Object.prototype.hasOwnProperty.call(value, "tool");
  if (!isTool && !Object.prototype.hasOwnProperty.call(value, "command")) {
    return { ok: false, message: 'a case names a command ("command": "Converse") or a tool ("tool": "issue_refund", "phase": "call")' };
  }
  if (isTool) {
    const parsed = toolCaseSchema.safeParse(value);
    if (!parsed.success) return { ok: false, message: describeZodError(parsed.error, "", toolCaseSchema) };
    return { ok: true, value: { ...parsed.data, kind: "tool" } as ToolCase };
  }
  const parsed = commandCaseSchema.safeParse(value);
  if (!parsed.success) return { ok: false, message: describeZodError(parsed.error, "", commandCaseSchema) };
  const { command, input, ...rest } = parsed.data;
  const commandName = command.endsWith("Command") ? command : `${command}Command`;
  // An unknown command would be denied (UnknownCommandError): in a test, that is a typo passing as a deny.
  if (commandSpec(commandName) === undefined) {
    return { ok: false, message: `command: "${command}" is not a Bedrock Runtime command this version governs (one of ${COMMAND_NAMES.join(", ")})` };
  }
  return { ok: true, value: { ...rest, kind: "command", commandName, input: input ?? {} } };
}

/** One Cedar evaluation made while deciding a case. */
export interface Evaluation {
  readonly request: CedarRequest;
  readonly decision: Decision;
}

/** How a case was decided. */
export interface CaseResult {
  readonly decision: Decision;
  /** What was decided, in words: `Converse us.anthropic.claude-3-5-haiku-20241022-v1:0`, `tool issue_refund (call)`. */
  readonly subject: string;
  /** The Cedar request the decision was evaluated on; undefined when it was decided before Cedar (no identity, a bad input ...). */
  readonly request?: CedarRequest;
  /** The tools the request offered, each decided at phase "offer" before the call (Converse, InvokeModel). */
  readonly offers: readonly { readonly name: string; readonly decision: Decision; readonly request?: CedarRequest }[];
}

/**
 * Decides a case. Resolves to what is wrong with it when its identity, scope, task or
 * authentication is malformed (the same `ConfigurationError` `runAs` would throw).
 */
export async function decideCase(governance: Governance, decisionCase: DecisionCase): Promise<Parsed<CaseResult>> {
  const nowMs = Date.now();
  let identity: WorkloadIdentity;
  try {
    identity = caseIdentity(decisionCase, nowMs);
  } catch (error) {
    if (error instanceof ConfigurationError) return { ok: false, message: error.message };
    throw error;
  }
  const evaluations: Evaluation[] = [];
  const recording: Governance = { ...governance, engine: recordingEngine(governance.engine, evaluations) };
  const decide = (): CaseResult =>
    decisionCase.kind === "command" ? decideCommand(recording, decisionCase, currentScope(), evaluations) : decideTool(recording, decisionCase, currentScope(), evaluations);
  const scope = decisionCase.scope as CallScope | undefined;
  try {
    const result = decisionCase.task !== undefined ? await runTask(identity, decisionCase.task, decide, scope) : runAs(identity, decide, scope);
    return { ok: true, value: result };
  } catch (error) {
    if (error instanceof ConfigurationError) return { ok: false, message: error.message };
    throw error;
  }
}

/** The identity: declared as given, or attested as a verified token would have (authentication). */
function caseIdentity(decisionCase: DecisionCase, nowMs: number): WorkloadIdentity {
  const identity = decisionCase.identity as unknown as WorkloadIdentity;
  const proof = decisionCase.authentication;
  if (proof === undefined) return identity;
  const delegation = proof.delegation;
  return attestIdentity(identity, {
    method: proof.method ?? "oidc",
    issuer: proof.issuer,
    subject: proof.subject ?? delegation?.onBehalfOf ?? String(identity.id),
    audience: proof.audience ?? ["bedrock-warden"],
    expiresAt: new Date(expiry(nowMs, proof.expiresInSeconds ?? DEFAULT_LIFETIME_SECONDS)),
    delegation: delegation
      ? { depth: delegation.actors.length, actors: delegation.actors.map((subject) => ({ subject })), onBehalfOf: delegation.onBehalfOf }
      : { depth: 0, actors: [] },
    ...(proof.spiffe && { spiffe: proof.spiffe }),
  });
}

/**
 * When something given "N seconds" from now expires. Lifetimes are read in whole seconds rounded
 * down at the moment of the decision, a few milliseconds later: the extra 999 ms keep a case's
 * `expiresInSeconds: 900` reading 900, not 899. Nothing is added to a lifetime already over.
 */
function expiry(nowMs: number, seconds: number): number {
  return nowMs + seconds * 1000 + (seconds > 0 ? 999 : 0);
}

/** The credentials a case's call is signed with (an Error when they have expired, as at run time). */
function caseCredentials(decisionCase: DecisionCase, nowMs: number): CredentialFacts | Error {
  const given = decisionCase.credentials;
  if (given?.kind === "bearer") return { kind: "bearer", brokered: false };
  if (given?.kind === "long-term") return { kind: "long-term", brokered: false };
  const seconds = given?.expiresInSeconds ?? DEFAULT_LIFETIME_SECONDS;
  const expiresAt = new Date(expiry(nowMs, seconds));
  if (seconds <= 0) return new Error(`the client's credentials expired at ${expiresAt.toISOString()}: its credentials provider did not refresh them`);
  return { kind: "temporary", brokered: given?.brokered ?? false, expiresAt };
}

/** The steps of the authorization middleware (src/middleware/authorization.ts), in its order. */
function decideCommand(governance: Governance, decisionCase: CommandCase, scope: ActiveScope, evaluations: Evaluation[]): CaseResult {
  const { commandName } = decisionCase;
  const spec = commandSpec(commandName)!;
  const identity = scope.identity!;
  const region = decisionCase.region ?? DEFAULT_REGION;
  // Copied as the middleware copies a call's input (too deep a case is unreadable, as a call would be).
  let input: Record<string, unknown> = {};
  let unreadable: Error | undefined;
  try {
    input = snapshotInput(commandInput(spec.action, decisionCase.input));
  } catch (error) {
    unreadable = error instanceof Error ? error : new Error(String(error));
  }
  // Credentials are looked up only for a call that can still be decided (the middleware's order).
  const credentials: CredentialFacts | Error =
    expiredProof(identity, Date.now()) === undefined ? caseCredentials(decisionCase, Date.now()) : new Error("not resolved: the call is denied before its credentials are looked up");
  const admission = caseAdmission(decisionCase);
  const before = evaluations.length;
  const { decision, input: decidedInput, offers, facts } = decideCall({
    governance,
    engine: governance.engine,
    commandName,
    spec,
    requested: input,
    identity,
    scope,
    environment: governance.environment,
    region,
    credentials,
    ...(unreadable && { unreadableInput: unreadable }),
    ...(admission && { admission }),
  });
  // The tools' offers are evaluated on Tool resources, the call on its model (when it got that far).
  const made = evaluations.slice(before);
  const offerRequests = made.filter((e) => e.request.resource.type === TOOL_TYPE);
  const evaluated = made.filter((e) => e.request.resource.type !== TOOL_TYPE).at(-1);
  const named = typeof decidedInput["modelId"] === "string" ? decidedInput["modelId"] : (/::"(.*)"$/.exec(decision.resource)?.[1] ?? decision.resource);
  return {
    decision,
    subject: `${spec.action} ${named}`,
    ...(evaluated && { request: evaluated.request }),
    offers: offeredTools(offers, offerRequests, facts),
  };
}

function offeredTools(offers: ToolOffers | undefined, evaluated: readonly Evaluation[], facts: InputFacts | undefined): CaseResult["offers"] {
  // Each offer is one evaluation, in the order the tools were decided.
  const requests = new Map<string, CedarRequest>();
  for (const { request } of evaluated) requests.set(request.resource.id, request);
  if (offers) {
    return [...offers.decisions].map(([name, decision]) => ({ name, decision, ...(requests.has(name) && { request: requests.get(name)! }) }));
  }
  return (facts?.toolsOffered ?? []).flatMap((name) => {
    const found = evaluated.find((e) => e.request.resource.id === name);
    return found ? [{ name, decision: found.decision, request: found.request }] : [];
  });
}

/** What the usage store would have answered for the case (undefined: no store). */
function caseAdmission(decisionCase: DecisionCase): Admission | undefined {
  const given = decisionCase.usage;
  if (given === undefined) return undefined;
  const usage = { callsLastMinute: given.callsLastMinute, tokensLastHour: given.tokensLastHour };
  return given.killed === undefined ? { outcome: "admitted", usage } : { outcome: "killed", killed: { reason: given.killed, at: new Date().toISOString() }, usage };
}

/**
 * The input as the SDK would hand it over: an InvokeModel body — or the one CountTokens counts —
 * given as a JSON object is sent as its JSON text.
 */
function commandInput(action: string, input: Record<string, unknown>): Record<string, unknown> {
  const asBytes = (body: unknown) => (typeof body === "object" && body !== null ? new TextEncoder().encode(JSON.stringify(body)) : body);
  if (action.startsWith("InvokeModel") && "body" in input) return { ...input, body: asBytes(input["body"]) };
  const counted = input["input"] as Record<string, unknown> | undefined;
  const invokeModel = typeof counted === "object" && counted !== null ? (counted["invokeModel"] as Record<string, unknown> | undefined) : undefined;
  if (action === "CountTokens" && typeof invokeModel === "object" && invokeModel !== null && "body" in invokeModel) {
    return { ...input, input: { ...counted, invokeModel: { ...invokeModel, body: asBytes(invokeModel["body"]) } } };
  }
  return input;
}

/** A tool at one phase, as the offer filter, the tool-call decisions and governTool decide it. */
function decideTool(governance: Governance, decisionCase: ToolCase, scope: ActiveScope, evaluations: Evaluation[]): CaseResult {
  const before = evaluations.length;
  const nowMs = Date.now();
  const identity = scope.identity!;
  // Offers and tool calls carry the model call's credentials; governTool executes in the application (none).
  const credentials = decisionCase.phase === "execute" ? undefined : caseCredentials(decisionCase, nowMs);
  let decision: Decision;
  const admission = caseAdmission(decisionCase);
  if (admission?.outcome === "killed") {
    // A killed workload is denied before any policy, its tools included (governTool reads the switch too).
    decision = killedDenial(
      {
        principal: entityRef(`${NAMESPACE}::Workload`, identity.id),
        action: entityRef(`${NAMESPACE}::Action`, governance.tools.get(decisionCase.tool)?.action ?? UNDECLARED_TOOL_ACTION),
        resource: entityRef(TOOL_TYPE, decisionCase.tool),
        policySetVersion: governance.engine.version,
      },
      identity.id,
      admission.killed,
    ).decision;
  } else if (credentials instanceof Error) {
    // A model call without usable credentials is denied (CredentialsUnavailableError) before any tool in it is decided.
    decision = unevaluatedDenial({
      principal: entityRef(`${NAMESPACE}::Workload`, identity.id),
      action: entityRef(`${NAMESPACE}::Action`, governance.tools.get(decisionCase.tool)?.action ?? UNDECLARED_TOOL_ACTION),
      resource: entityRef(TOOL_TYPE, decisionCase.tool),
      reason: `no credentials to sign the model call with: ${credentials.message}`,
      errors: [`credentials: Error: ${credentials.message}`],
      policySetVersion: governance.engine.version,
    });
  } else {
    decision = authorizeTool({
      engine: governance.engine,
      tools: governance.tools,
      environment: governance.environment,
      // An execution is decided with the region of the model call that asked for it, which a case
      // gives as its region; governTool with no such call decides with none ("").
      region: decisionCase.region ?? (decisionCase.phase === "execute" ? "" : DEFAULT_REGION),
      identity,
      scope,
      name: decisionCase.tool,
      phase: decisionCase.phase,
      ...(decisionCase.phase !== "offer" && { input: decisionCase.input }),
      ...(decisionCase.toolUseId !== undefined && { toolUseId: decisionCase.toolUseId }),
      ...(decisionCase.serverSide !== undefined && { serverSide: decisionCase.serverSide }),
      ...(credentials && { credentials }),
      ...(admission?.outcome === "admitted" && { usage: admission.usage }),
    }).decision;
  }
  const evaluated = evaluations.slice(before).at(-1);
  return { decision, subject: `tool ${decisionCase.tool} (${decisionCase.phase})`, ...(evaluated && { request: evaluated.request }), offers: [] };
}

/**
 * The engine, unchanged, except that every request it evaluates is kept with its decision (to
 * show the Cedar request as evaluated). Every other member is the engine's own.
 */
function recordingEngine(engine: CedarEngine, evaluations: Evaluation[]): CedarEngine {
  return new Proxy(engine, {
    get(target, property) {
      if (property === "authorize") {
        return (request: CedarRequest): Decision => {
          const decision = target.authorize(request);
          evaluations.push({ request, decision });
          return decision;
        };
      }
      // Model calls are decided through the memo's front, which asks for the memo key with the decision.
      if (property === "authorizeKept") {
        return (request: CedarRequest): KeptDecision => {
          const kept = target.authorizeKept(request);
          evaluations.push({ request, decision: kept.decision });
          return kept;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
