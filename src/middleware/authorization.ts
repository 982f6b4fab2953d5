/**
 * The authorization middleware (initialize step): for every command, resolve the workload,
 * decide with Cedar, and either deny — span, record and {@link AccessDeniedError}, nothing
 * serialized or sent — or let the call through, attributed, and observe its response, streams included.
 * @module
 */
import { context as otelContext, trace } from "@opentelemetry/api";
import type {
  AbsoluteLocation,
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  InitializeHandlerOptions,
  InitializeHandlerOutput,
  InitializeMiddleware,
  MetadataBearer,
} from "@smithy/types";
import type { AwsCredentialIdentity } from "@smithy/types";
import { maskSecretShapes } from "../audit/secret-shapes.js";
import type { CallCredentialResolver, CredentialPlan } from "../credentials/call-credentials.js";
import { signWith } from "../credentials/call-credentials.js";
import { DEFAULT_PATH } from "../identity/run-task.js";
import { classifyCredentials, NO_AWS_CREDENTIALS, type CredentialFacts } from "../credentials/credential-facts.js";
import { CredentialsUnavailableError } from "../errors.js";
import type { Governance } from "../governance.js";
import { currentScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import { decideCall } from "../policy/call-decision.js";
import { commandSpec, type InputFacts } from "../policy/commands.js";
import { unevaluatedDenial, type Decision } from "../policy/decision.js";
import { expiredProof } from "../policy/principal-context.js";
import { recordCredentials, recordIdentity, recordToolOffers, startCallSpan } from "../telemetry/call-span.js";
import { observeOutput } from "../telemetry/response-observer.js";
import { attributedInput } from "./attribution.js";
import { GOVERNED_CALL, GovernedCall } from "./governed-call.js";
import type { ToolOffers } from "../tools/tool-offers.js";
import { invokeResponseToolCalls } from "../tools/invoke-model-tool-calls.js";
import {
  attachToolDecisions,
  decideMessageToolCalls,
  decideOutputToolCalls,
  StreamToolCallDecider,
  type ToolCallDecision,
  type ToolCallScope,
} from "../tools/tool-call-decisions.js";
import { snapshotInput } from "./input-snapshot.js";
import { admitCall } from "../budgets/usage-context.js";
import { guardStream } from "./stream-guard.js";
import { ConverseStreamInspector, InvokeStreamInspector } from "./stream-inspectors.js";

/** What the authorization middleware needs. */
export interface AuthorizationMiddlewareOptions {
  readonly governance: Governance;
  /** The client's default identity, for calls made outside `runAs`. */
  readonly identity?: WorkloadIdentity;
  /** The client's region (from `client.config.region`), synchronously once it is known. */
  readonly region: () => string | Promise<string>;
  /**
   * Whether the client now shares one handler context across calls (`cacheMiddleware`, which can
   * be switched on after construction): such a client cannot be governed, and every call is denied.
   */
  readonly sharesContext: () => boolean;
  /** The client's credentials, resolved for each call before it is decided. */
  readonly credentials: CallCredentialResolver;
}

export const authorizationMiddlewareOptions: InitializeHandlerOptions & AbsoluteLocation & { name: string; override: boolean } = {
  name: "bedrockWardenAuthorizationMiddleware",
  // Attribution was a middleware of its own in earlier versions: a stack anchored to its name still finds it here.
  aliases: ["bedrockWardenAttributionMiddleware"],
  step: "initialize",
  priority: "high",
  tags: ["BEDROCK_WARDEN"],
  override: false,
};

type Input = Record<string, unknown>;

const NO_OFFERS: ReadonlyMap<string, Decision> = new Map();
const NOT_RESOLVED = new Error("not resolved: the call is denied before its credentials are looked up");
const NO_TOOLS: ReadonlySet<string> = new Set();

/**
 * The middleware factory, in the SDK's style. Prefer {@link getGovernancePlugin}, which adds it
 * with the other governance middleware.
 */
export function authorizationMiddleware(options: AuthorizationMiddlewareOptions): InitializeMiddleware<any, MetadataBearer> {
  const { governance, identity: defaultIdentity } = options;
  return (next: InitializeHandler<any, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: InitializeHandlerArguments<any>): Promise<InitializeHandlerOutput<MetadataBearer>> => {
      const slot = context as Record<symbol, unknown>;
      const outer = slot[GOVERNED_CALL] as GovernedCall | undefined;
      // Attached twice to one call's stack (a framework and the application both governing a client):
      // the outer middleware decided, and passed its own (attributed) snapshot on. Anything else is a reused context.
      if (outer !== undefined && !outer.finished && args.input === outer.sentInput && !options.sharesContext()) return next(args);
      const commandName = context.commandName ?? "UnknownCommand";
      const spec = commandSpec(commandName);
      let input: Input;
      let unreadable: Error | undefined;
      try {
        input = snapshotInput(args.input);
      } catch (error) {
        input = {};
        unreadable = error instanceof Error ? error : new Error(String(error));
      }
      const scope = currentScope();
      const identity = scope.identity ?? defaultIdentity;
      // One policy set for the whole call, though a reload may land while it awaits: the set its
      // brokered credentials are scoped by is the set that decides it.
      const engine = governance.engine;
      const span = startCallSpan(governance.tracer, commandName, spec, input, governance.captureContent);
      const call = new GovernedCall(governance, commandName, span, identity, scope, input);
      slot[GOVERNED_CALL] = call;
      recordIdentity(span, identity, scope, governance.environment);
      // Counted now, read just before the decision: the store's round trip overlaps the region and
      // credentials lookups. admitCall never rejects.
      const admission = identity && spec && governance.usage ? admitCall(governance.usage, identity.id, Date.now()) : undefined;

      let region: string | Error;
      try {
        const resolved = options.region();
        region = typeof resolved === "string" ? resolved : await resolved;
        call.region = region;
      } catch (error) {
        region = error instanceof Error ? error : new Error(String(error));
      }
      // What the call will be signed with is part of what is decided: known here, issued (by a
      // broker) only once the call is allowed. Nothing is looked up for a call denied anyway.
      let credentials: CredentialPlan | Error = NOT_RESOLVED;
      if (identity && spec && !unreadable && typeof region === "string" && !options.sharesContext() && expiredProof(identity, Date.now()) === undefined) {
        const task = scope.task;
        const request = { identity, task: task?.name ?? DEFAULT_PATH, taskScope: task, engine, environment: governance.environment };
        try {
          credentials = await options.credentials.plan(request, spec.action);
          call.credentials = credentials.facts;
          recordCredentials(span, credentials.facts);
        } catch (error) {
          credentials = error instanceof Error ? error : new Error(String(error));
        }
      }
      let signing = credentials instanceof Error ? NO_AWS_CREDENTIALS : credentials.facts;
      const admitted = admission === undefined ? undefined : await admission;
      const usage = admitted?.outcome === "admitted" ? admitted.usage : undefined;
      // Least privilege before the call: tools are decided (and withheld) before the model call is.
      const requested = input;
      let offers: ToolOffers | undefined;
      let bodyFacts: InputFacts | undefined;
      const failingSink = governance.failingSink();
      const decide = (signedWith: CredentialFacts | Error) => {
        const decided = decideCall({
          governance,
          engine,
          commandName,
          spec,
          requested,
          identity,
          scope,
          environment: governance.environment,
          region,
          credentials: signedWith,
          unreadableInput: unreadable,
          sharedContext: options.sharesContext(),
          admission: admitted,
          failingSink,
        });
        input = call.input = decided.input;
        offers = call.toolOffers = decided.offers;
        bodyFacts = decided.facts;
        return decided;
      };
      // On the span once, when the call's decision is final (the offers may be decided again with it).
      const recordOffers = () => {
        if (offers) recordToolOffers(span, offers);
      };
      let authorization = decide(credentials instanceof Error ? credentials : credentials.facts);
      call.decided(authorization.decision);
      if (authorization.denial) {
        recordOffers();
        call.finish("denied", authorization.denial);
        throw authorization.denial;
      }
      // Allowed: only now are brokered credentials issued (or taken from the cache).
      let brokered: AwsCredentialIdentity | undefined;
      const obtain = (credentials as CredentialPlan).obtain;
      if (obtain) {
        try {
          brokered = await obtain();
        } catch (error) {
          const denial = credentialsDenial(authorization.decision, error);
          call.decided(denial.decision);
          recordOffers();
          call.finish("denied", denial);
          throw denial;
        }
        const issued = classifyCredentials(brokered, true);
        call.credentials = issued;
        recordCredentials(span, issued);
        // The broker may hand back other credentials than the plan described (STS failing during a
        // refresh: the cached ones, while still usable). The call is signed with those, so it is
        // decided with them — its tools too, and the tool calls of its response — and that decision
        // replaces the first as the call's one decision.
        const planned = signing;
        signing = issued;
        if (issued.kind !== planned.kind || issued.expiresAt?.getTime() !== planned.expiresAt?.getTime()) {
          authorization = decide(issued);
          call.decided(authorization.decision);
          if (authorization.denial) {
            recordOffers();
            call.finish("denied", authorization.denial);
            throw authorization.denial;
          }
        }
      }
      recordOffers();

      let result: InitializeHandlerOutput<MetadataBearer>;
      try {
        const sent = (call.sentInput = attributedInput(call, input));
        result = await signWith(brokered, () => otelContext.with(trace.setSpan(otelContext.active(), span), () => next({ ...args, input: sent })));
      } catch (error) {
        call.finish("failed", error);
        throw error;
      }
      const output = result.output as unknown as Input;
      try {
        observeOutput(call.observation, output, call.responseHeaders, governance.captureContent);
      } catch {
        // A response we cannot read is still the caller's response.
      }
      // Every tool call the model asks for is decided on its own, with its input.
      const toolScope = (): ToolCallScope => ({
        governance,
        identity,
        scope,
        region: call.region ?? "",
        // Converse: the tools left after filtering; InvokeModel: the body's (all allowed, or the call was denied).
        offered: offers && offers.decisions.size > 0 ? new Set(offers.offered) : bodyFacts && bodyFacts.toolsOffered.length > 0 ? new Set(bodyFacts.toolsOffered) : undefined,
        offerDecisions: offers?.decisions ?? NO_OFFERS,
        serverSideTools: offers?.serverSide ?? NO_TOOLS,
        span,
        command: commandName,
        credentials: signing,
        ...(usage && { usage }),
      });
      const conversing = spec?.action === "Converse" || spec?.action === "ConverseStream";
      const invoking = spec?.action === "InvokeModel" || spec?.action === "InvokeModelWithResponseStream";
      if (spec?.streaming) {
        const field = isAsyncIterable(output["stream"]) ? "stream" : isAsyncIterable(output["body"]) ? "body" : undefined;
        if (field) {
          const decisions: ToolCallDecision[] = [];
          const deciding = conversing || invoking;
          const decider = deciding ? new StreamToolCallDecider(toolScope(), decisions) : undefined;
          const inspector =
            field === "stream" ? new ConverseStreamInspector(call.observation, governance.captureContent, decider) : new InvokeStreamInspector(call.observation, decider);
          const governed = { ...output, [field]: guardStream(output[field] as AsyncIterable<Input>, call, inspector) };
          if (deciding) attachToolDecisions(governed, decisions);
          return { ...result, output: governed as unknown as MetadataBearer };
        }
      }
      // Decided while the model call's span is open: each decision is an event on it.
      let tools: ReturnType<typeof decideOutputToolCalls> | undefined;
      if (conversing && asksForTools(output)) tools = decideMessageToolCalls(output, toolScope());
      else if (invoking) {
        const calls = invokeResponseToolCalls(output["body"]);
        if (calls.length > 0) tools = decideOutputToolCalls(calls, output, toolScope());
      }
      if (tools) attachToolDecisions(output, tools.decisions);
      if (tools?.error) {
        // As for a stream stopped at a denied tool call: the caller gets an error, and so does the span.
        call.finish("failed", tools.error);
        throw tools.error;
      }
      call.finish("completed");
      return result;
    };
}

/**
 * The call was allowed, but the credentials it was allowed with could not be issued (STS refused,
 * throttled past the retries, no session policy could be made): it is denied after all, and this
 * denial replaces the allow as the call's one decision.
 */
function credentialsDenial(allowed: Decision, error: unknown): CredentialsUnavailableError {
  // STS's or the broker's words; masked like any provider's before they are recorded.
  const message = maskSecretShapes(error instanceof Error ? error.message : String(error));
  const decision = unevaluatedDenial({
    principal: allowed.principal,
    action: allowed.action,
    resource: allowed.resource,
    reason: `no credentials to sign the call with: ${message}`,
    errors: [`credentials: ${error instanceof Error ? error.name : "Error"}: ${message}`],
    policySetVersion: allowed.policySetVersion,
  });
  return new CredentialsUnavailableError(decision);
}

/** Whether a Converse output holds any tool call (most do not: nothing to decide, nothing to allocate). */
function asksForTools(output: Input): boolean {
  const content = (output["output"] as { message?: { content?: unknown } } | undefined)?.message?.content;
  if (!Array.isArray(content)) return false;
  for (const block of content) if (typeof block === "object" && block !== null && "toolUse" in block) return true;
  return false;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}
