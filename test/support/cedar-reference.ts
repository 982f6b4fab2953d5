/**
 * The reference of the differential tests: Cedar's own answer with every policy in one set and the
 * whole request — nothing sliced, pruned or memoized — reduced to what the engine must match.
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import type { CedarEntity, CedarRequest } from "../../src/policy/request-shape.js";

/** Cedar's decision, the determining policies (sorted) and whether any policy errored. */
export interface ReferenceAnswer {
  effect: "allow" | "deny";
  policies: string[];
  errored: boolean;
}

/**
 * Cedar's answer for the request against `policies` (id → text), with `entities` added to the
 * request's (e.g. the schema's action entities). Any evaluation error is a deny with no
 * determining policies, as the engine fails closed; a request Cedar refuses whole (a hierarchy
 * with a cycle) is an errored deny.
 */
export function wholeSetAnswer(policies: Readonly<Record<string, string>>, request: CedarRequest, entities: readonly CedarEntity[] = []): ReferenceAnswer {
  const answer = cedar.isAuthorized({
    principal: request.principal,
    action: request.action,
    resource: request.resource,
    context: request.context as cedar.Context,
    entities: [...request.entities, ...entities] as cedar.EntityJson[],
    policies: { staticPolicies: { ...policies } },
  });
  if (answer.type !== "success") return { effect: "deny", policies: [], errored: true };
  const errored = answer.response.diagnostics.errors.length > 0;
  return {
    effect: errored ? "deny" : answer.response.decision === "allow" ? "allow" : "deny",
    policies: errored ? [] : [...answer.response.diagnostics.reason].sort(),
    errored,
  };
}
