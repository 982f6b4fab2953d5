/**
 * A model call's decision, step by step: the tools its request offers are decided first (least
 * privilege: a denied tool is withheld from the request), then the call itself, with the request
 * that will be sent. The governance middleware and the CLI's decision cases both decide calls
 * here, so a policy test decides a case exactly as the runtime decides the call.
 * @module
 */
import type { Governance } from "../governance.js";
import type { Usage } from "../budgets/usage-store.js";
import { offerTools, type ToolOffers } from "../tools/tool-offers.js";
import { authorizeCall, type Authorization, type CallToAuthorize } from "./authorize-call.js";
import type { InputFacts } from "./commands.js";

/**
 * What a call is decided from: what {@link authorizeCall} needs, with the request as the caller gave it.
 *
 * @example
 * ```ts
 * const call: CallToDecide = { governance, engine: governance.engine, commandName, spec, requested: snapshotInput(input), identity, scope, environment: governance.environment, region, credentials };
 * ```
 */
export interface CallToDecide extends Omit<CallToAuthorize, "input" | "facts" | "toolDenial"> {
  readonly governance: Governance;
  /** The request as the caller gave it (its snapshot): tools may be withheld from it. */
  readonly requested: Record<string, unknown>;
}

/**
 * The call's decision, and what its tool offers decided.
 *
 * @example
 * ```ts
 * const { decision, denial, input, offers } = decideCall(call);
 * if (denial) throw denial;
 * console.log(decision.effect, offers?.withheld.map((w) => w.name));
 * ```
 */
export interface CallDecision extends Authorization {
  /** The request to send: `requested`, or a copy without the tools withheld. */
  readonly input: Record<string, unknown>;
  /** Converse and ConverseStream: each tool's offer decision, and the tools withheld. */
  readonly offers?: ToolOffers | undefined;
  /** InvokeModel*: what the body says, read once for the offers and the call. */
  readonly facts?: InputFacts | undefined;
}

/**
 * Decides a call: its tool offers (when the call can still be decided: an identity, a known
 * command, a readable input, a region and credentials), then the call. Never throws: offers that
 * cannot be decided deny the call, saying why.
 *
 * @example
 * ```ts
 * const decided = decideCall({ ...call, credentials: plan.facts });
 * send(decided.input); // the request without the tools withheld
 * ```
 */
export function decideCall(call: CallToDecide): CallDecision {
  const { governance, requested, identity, spec, unreadableInput, region, credentials, admission } = call;
  let input = requested;
  let offers: ToolOffers | undefined;
  let facts: InputFacts | undefined;
  let toolDenial: ToolOffers["denial"];
  if (identity && spec && !unreadableInput && typeof region === "string" && !(credentials instanceof Error)) {
    const usage: Usage | undefined = admission?.outcome === "admitted" ? admission.usage : undefined;
    try {
      const step = offerTools(spec, requested, { governance, engine: call.engine, identity, scope: call.scope, region, credentials, ...(usage && { usage }) });
      input = step.input;
      offers = step.offers;
      toolDenial = step.denial;
      facts = step.facts;
    } catch (error) {
      // The snapshot holds plain data, so this is not expected; if it happens, the call is denied (and recorded).
      toolDenial = { reason: `the tools the request offers could not be decided: ${error instanceof Error ? error.message : String(error)}`, policies: [] };
    }
  }
  const authorization = authorizeCall({ ...call, input, facts, toolDenial });
  return { ...authorization, input, offers, facts };
}
