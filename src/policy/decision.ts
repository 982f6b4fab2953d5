/**
 * The outcome of one authorization: what was asked, what was decided, by which policies and why.
 * @module
 */

/**
 * One authorization decision. Entity references are written as Cedar writes them
 * (`Bedrock::Workload::"spiffe://acme.example/agents/invoice"`), so they can be pasted into a policy.
 *
 * @example
 * ```ts
 * const d: Decision = {
 *   effect: "deny",
 *   principal: 'Bedrock::Workload::"spiffe://acme.example/agents/invoice"',
 *   action: 'Bedrock::Action::"Converse"',
 *   resource: 'Bedrock::Model::"anthropic.claude-3-opus-20240229-v1:0"',
 *   policies: ["no-opus-in-prod"],
 *   reasons: ["opus is reserved for the research group"],
 *   errors: [],
 *   policySetVersion: "sha256:5d41…",
 * };
 * ```
 */
export interface Decision {
  /** `"allow"` only when a policy permits and none forbids, with no evaluation error. */
  readonly effect: "allow" | "deny";
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  /** The ids of the determining policies: the permits that allowed, or the forbids that denied. */
  readonly policies: readonly string[];
  /** Why, in words: each determining policy's `@reason(...)` annotation, or a description of the default. */
  readonly reasons: readonly string[];
  /** Evaluation errors (each one forces a deny), with the erroring policy's id. */
  readonly errors: readonly string[];
  /** The content hash of the policy set and schema that decided. */
  readonly policySetVersion: string;
  /**
   * Set when policies in shadow (a `@shadow` policy, or the whole engine with
   * `enforcement: "shadow"`) would have decided otherwise: what they would have decided. The
   * call went on with `effect`; this is the would-be decision to watch before enforcing it.
   */
  readonly shadow?: ShadowDecision;
}

/**
 * What the policies in shadow would have decided.
 *
 * @example
 * ```ts
 * if (decision.shadow?.effect === "deny") console.warn(`would deny: ${decision.shadow.policies.join(", ")}`);
 * ```
 */
export interface ShadowDecision {
  readonly effect: "allow" | "deny";
  readonly policies: readonly string[];
  readonly reasons: readonly string[];
  readonly errors: readonly string[];
}

/** The string form of an entity reference, as Cedar policies write it. */
export function entityRef(type: string, id: string): string {
  return `${type}::${JSON.stringify(id)}`;
}

/** A deny reached without evaluating policies (no identity, an unreadable input, a malformed tool call ...). */
export function unevaluatedDenial(parts: {
  principal: string;
  action: string;
  resource: string;
  reason: string;
  errors?: readonly string[];
  policies?: readonly string[];
  policySetVersion: string;
}): Decision {
  return Object.freeze({
    effect: "deny",
    principal: parts.principal,
    action: parts.action,
    resource: parts.resource,
    policies: Object.freeze([...(parts.policies ?? [])]),
    reasons: Object.freeze([parts.reason]),
    errors: Object.freeze([...(parts.errors ?? [])]),
    policySetVersion: parts.policySetVersion,
  });
}
