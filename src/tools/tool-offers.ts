/**
 * Least privilege before the call: the tools in a Converse request are decided one by one (phase
 * "offer"), and the ones the workload may not use are removed, so the model never sees them — or,
 * with `toolFiltering: "deny"`, the whole call is denied. AWS-run `systemTool`s are decided too.
 * A `toolChoice` that names a removed tool, or a conversation that already uses tools when none may
 * be offered, denies the call: Bedrock would reject or misroute it otherwise.
 * @module
 */
import type { Governance } from "../governance.js";
import type { CedarEngine } from "../policy/cedar-engine.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CommandSpec, InputFacts } from "../policy/commands.js";
import type { Decision } from "../policy/decision.js";
import { authorizeTool } from "./authorize-tool.js";
import type { Usage } from "../budgets/usage-store.js";
import type { CredentialFacts } from "../credentials/credential-facts.js";
import { asRecord } from "../records.js";

/** The outcome of deciding the tools of one request. */
export interface ToolOffers {
  /** The request to send: the snapshot itself, or a copy whose `toolConfig` lists only the allowed tools. */
  readonly input: Record<string, unknown>;
  /** The names of the tools offered to the model, after filtering. */
  readonly offered: readonly string[];
  /** The tools removed, each with the decision that removed it. */
  readonly withheld: readonly { readonly name: string; readonly decision: Decision }[];
  /** Every offer decision, by tool name. */
  readonly decisions: ReadonlyMap<string, Decision>;
  /** The offered tools that AWS runs itself (`systemTool`s): only their calls may be taken as server-side. */
  readonly serverSide: ReadonlySet<string>;
  /** Set when the call itself must be denied, with why and which policies decided. */
  readonly denial?: { readonly reason: string; readonly policies: readonly string[] };
}

/** What the tools of a request are decided with. */
export interface OfferContext {
  readonly governance: Governance;
  readonly identity: WorkloadIdentity;
  readonly scope: ActiveScope;
  readonly region: string;
  /** The credentials of the model call the tools are offered in. */
  readonly credentials: CredentialFacts;
  /** The principal's usage, when counted. */
  readonly usage?: Usage;
  /** The engine the model call is decided by (the governance's current one when not given). */
  readonly engine?: CedarEngine;
}

/** The tool-offer step of a model call: what it decided, and the input the call goes on with. */
export interface ToolOfferStep {
  /** The input to decide and send: the caller's, or a copy whose `toolConfig` lists only the allowed tools. */
  readonly input: Record<string, unknown>;
  /** Converse and ConverseStream: each tool's offer decision, and the tools withheld. */
  readonly offers?: ToolOffers;
  /** InvokeModel*: what the body says, read once (the same facts go into the model call's decision). */
  readonly facts?: InputFacts;
  /** Set when the tools offered deny the call itself. */
  readonly denial?: ToolOffers["denial"];
}

/**
 * Least privilege before the call: decides the tools a model-call request offers — the one step
 * the governance middleware and the CLI's decision cases both take before the call is decided.
 */
export function offerTools(spec: CommandSpec, input: Record<string, unknown>, context: OfferContext): ToolOfferStep {
  if (spec.action === "Converse" || spec.action === "ConverseStream") {
    const offers = governConverseTools(input, context);
    return { input: offers.input, offers, ...(offers.denial && { denial: offers.denial }) };
  }
  if (spec.action === "InvokeModel" || spec.action === "InvokeModelWithResponseStream") {
    let facts: InputFacts | undefined;
    try {
      facts = spec.facts(input);
    } catch {
      // authorizeCall reads the input again and denies, saying why.
    }
    const denial =
      facts === undefined || facts.toolsUnreadable
        ? { reason: "the request body offers tools whose names cannot be read, so they cannot be decided", policies: [] }
        : governNamedTools(facts.toolsOffered, context);
    return { input, ...(facts && { facts }), ...(denial && { denial }) };
  }
  return { input };
}

const NO_DECISIONS: ReadonlyMap<string, Decision> = new Map();
const NO_NAMES: ReadonlySet<string> = new Set();

/** Decides the tools of a Converse or ConverseStream request. */
export function governConverseTools(input: Record<string, unknown>, context: OfferContext): ToolOffers {
  const offers = governToolConfig(input, context);
  // Provider-specific tools (Anthropic's computer use, bash, text editor) travel in
  // additionalModelRequestFields: decided too, and a denied one denies the call (they are not ours to edit).
  const extra = asRecord(input["additionalModelRequestFields"])?.["tools"];
  if (extra === undefined || offers.denial) return offers;
  const names = Array.isArray(extra) ? extra.map((tool) => asRecord(tool)?.["name"]) : [undefined];
  if (!names.every((name): name is string => typeof name === "string")) {
    return { ...offers, denial: { reason: "additionalModelRequestFields.tools offers tools whose names cannot be read, so they cannot be decided", policies: [] } };
  }
  const decisions = new Map(offers.decisions);
  const withheld: { name: string; decision: Decision }[] = [];
  for (const name of names) {
    const { decision } = decideOffer(name, false, context);
    decisions.set(name, decision);
    if (decision.effect !== "allow") withheld.push({ name, decision });
  }
  if (withheld.length > 0) {
    return {
      ...offers,
      decisions,
      withheld: [...offers.withheld, ...withheld],
      denial: {
        reason: `additionalModelRequestFields offers tools this workload may not use: ${withheld.map((w) => w.name).join(", ")} (${reasonsOf(withheld)})`,
        policies: withheld.flatMap((w) => w.decision.policies),
      },
    };
  }
  return { ...offers, decisions, offered: [...offers.offered, ...names] };
}

/** `{ cachePoint: { … } }` and nothing else. */
function isCachePoint(entry: Record<string, unknown>): boolean {
  const members = membersOf(entry);
  return members.length === 1 && members[0] === "cachePoint";
}

/** The members a union entry sets (one left undefined is not sent by the SDK: it is not set). */
function membersOf(entry: Record<string, unknown>): string[] {
  return Object.keys(entry).filter((key) => entry[key] !== undefined);
}

function governToolConfig(input: Record<string, unknown>, context: OfferContext): ToolOffers {
  const toolConfig = asRecord(input["toolConfig"]);
  const tools = toolConfig?.["tools"];
  // Most calls offer no tools: nothing to decide, nothing to allocate.
  if (!toolConfig || !Array.isArray(tools)) return { input, offered: [], withheld: [], decisions: NO_DECISIONS, serverSide: NO_NAMES };
  const decisions = new Map<string, Decision>();
  const serverSide = new Set<string>();
  const kept: unknown[] = [];
  const offered: string[] = [];
  const withheld: { name: string; decision: Decision }[] = [];
  for (let index = 0; index < tools.length; index++) {
    const tool: unknown = tools[index];
    const entry = asRecord(tool);
    if (entry !== undefined && isCachePoint(entry)) {
      // A cache point offers nothing: kept as it is.
      kept.push(tool);
      continue;
    }
    const spec = asRecord(entry?.["toolSpec"]);
    const system = asRecord(entry?.["systemTool"]);
    const name = spec?.["name"] ?? system?.["name"];
    // Exactly one tool, named: anything else (both kinds in one entry, no name, a kind this version
    // does not know) would reach the model undecided.
    if (typeof name !== "string" || (spec !== undefined) === (system !== undefined) || membersOf(entry!).length !== 1) {
      return {
        input,
        offered,
        withheld,
        decisions,
        serverSide,
        denial: {
          reason: `toolConfig.tools[${index}] is not one named toolSpec, systemTool or cachePoint, so the tool it offers cannot be decided`,
          policies: [],
        },
      };
    }
    const { decision } = decideOffer(name, system !== undefined, context);
    decisions.set(name, decision);
    if (decision.effect === "allow") {
      kept.push(tool);
      offered.push(name);
      if (system !== undefined) serverSide.add(name);
    } else {
      withheld.push({ name, decision });
    }
  }
  if (withheld.length === 0) return { input, offered, withheld, decisions, serverSide };
  const denied = (reason: string) => ({
    input,
    offered,
    withheld,
    decisions,
    serverSide,
    denial: { reason, policies: withheld.flatMap((w) => w.decision.policies) },
  });
  const names = withheld.map((w) => w.name).join(", ");
  if (context.governance.toolFiltering === "deny") {
    return denied(`the request offers tools this workload may not use: ${names} (${reasonsOf(withheld)})`);
  }
  const chosen = asRecord(asRecord(toolConfig["toolChoice"])?.["tool"])?.["name"];
  if (typeof chosen === "string" && withheld.some((w) => w.name === chosen)) {
    return denied(`toolChoice names ${chosen}, which this workload may not use (${reasonsOf(withheld.filter((w) => w.name === chosen))})`);
  }
  if (offered.length === 0) {
    if (conversationUsesTools(input["messages"])) {
      return denied(`the conversation uses tools, but none of those offered may be used by this workload: ${names}`);
    }
    // Set, not only left out: a toolConfig inherited from a polluted Object.prototype would still be read by the serializer.
    return { input: { ...input, toolConfig: undefined }, offered, withheld, decisions, serverSide };
  }
  return { input: { ...input, toolConfig: { ...toolConfig, tools: kept } }, offered, withheld, decisions, serverSide };
}

/**
 * Decides the tools named in an opaque request (an InvokeModel body): they cannot be removed from
 * it, so any tool the workload may not use denies the call.
 */
export function governNamedTools(names: readonly string[], context: OfferContext): ToolOffers["denial"] | undefined {
  const withheld: { name: string; decision: Decision }[] = [];
  for (const name of names) {
    const { decision } = decideOffer(name, false, context);
    if (decision.effect !== "allow") withheld.push({ name, decision });
  }
  if (withheld.length === 0) return undefined;
  return {
    reason: `the request body offers tools this workload may not use, which cannot be removed from it: ${withheld.map((w) => w.name).join(", ")} (${reasonsOf(withheld)})`,
    policies: withheld.flatMap((w) => w.decision.policies),
  };
}

function decideOffer(name: string, serverSide: boolean, context: OfferContext) {
  const { governance } = context;
  return authorizeTool({
    engine: context.engine ?? governance.engine,
    tools: governance.tools,
    environment: governance.environment,
    region: context.region,
    identity: context.identity,
    scope: context.scope,
    name,
    phase: "offer",
    serverSide,
    credentials: context.credentials,
    ...(context.usage && { usage: context.usage }),
  });
}

function reasonsOf(withheld: readonly { name: string; decision: Decision }[]): string {
  return withheld.map((w) => `${w.name}: ${w.decision.reasons.join("; ")}`).join(" / ");
}

function conversationUsesTools(messages: unknown): boolean {
  if (!Array.isArray(messages)) return false;
  return messages.some((message) => {
    const content = asRecord(message)?.["content"];
    return Array.isArray(content) && content.some((block) => asRecord(block)?.["toolUse"] !== undefined || asRecord(block)?.["toolResult"] !== undefined);
  });
}

