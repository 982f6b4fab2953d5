/**
 * The Cedar engine: policies validated against the schema at load, preparsed once, warmed up at
 * construction, and evaluated locally per call. Every path that is not a clean allow is a deny.
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import type * as cedarTypes from "./cedar-wasm.js";
import { markWasmLost, reinstantiateWasm, wasm as cedar, wasmLost } from "./cedar-wasm.js";
import { PolicyLoadError, type PolicyProblem } from "../errors.js";
import { entityRef, type Decision, type ShadowDecision } from "./decision.js";
import type { PolicyDocument } from "./sources.js";
import { contextKey } from "./context-comparisons.js";
import { DecisionCache } from "./decision-cache.js";
import { LruMap } from "./lru-map.js";
import { pruneContext, pruneEntity, type EntityRole } from "./policy-reads.js";
import { PolicySlices, type EntityPlan, type PreparedEntity, type Slice, type SliceLimits } from "./policy-slices.js";
import { GUARDRAIL_ARN_IN_TEXT } from "./commands.js";
import { deepFreeze, isSealedEntity, NAMESPACE, sealedUidJson } from "./request-builder.js";
import { policyTextProblems } from "./policy-text-limits.js";
import { assertEntity, assertRequestEnvelope, type CedarEntity, type CedarRequest, type CedarValue } from "./request-shape.js";

/** Decisions memoized per engine unless `decisionCacheSize` says otherwise. */
export const DEFAULT_DECISION_CACHE_SIZE = 10_000;

/**
 * A policy as loaded: its id, where it came from and what its annotations say.
 *
 * @example
 * ```ts
 * for (const policy of governance.engine.policies.values()) console.log(`${policy.id} (${policy.source}:${policy.line}) ${policy.effect}`);
 * ```
 */
export interface LoadedPolicy {
  readonly id: string;
  readonly source: string;
  readonly line: number;
  readonly effect: "permit" | "forbid";
  readonly annotations: Readonly<Record<string, string>>;
}

// cedar-wasm keeps every preparsed set until the process ends: an engine replaced by a reload and
// collected has its slices' sets emptied, so that their memory is reused instead of growing with every reload.
const preparsedSets = new FinalizationRegistry<ReadonlySet<string>>((setIds) => {
  for (const setId of setIds) {
    try {
      cedar.preparsePolicySet(setId, { staticPolicies: {} });
    } catch {
      // Nothing to free, or the engine is gone: either way nothing more to do.
    }
  }
});

/**
 * Which evaluator decides a request the memo cannot answer:
 * - `"javascript"` (the default): a JavaScript evaluator decides the slices whose policies are all
 *   in the part of Cedar it evaluates exactly as Cedar does, and hands any evaluation that would
 *   error, or meets a value outside that part, to cedar-wasm (see `subset-evaluator.ts`);
 * - `"wasm"`: cedar-wasm evaluates every request.
 *
 * @example
 * ```ts
 * const governance = createGovernance({ environment: "prod", policies, evaluator: "wasm" });
 * ```
 */
export type PolicyEvaluator = "javascript" | "wasm";

/**
 * A loaded, validated, preparsed policy set, as `governance.engine`. `createGovernance` builds it;
 * `authorize` is cheap and never throws.
 *
 * @example
 * ```ts
 * const { engine } = createGovernance({ environment: "production", policies });
 * console.log(engine.version, [...engine.policies.keys()], engine.warnings);
 * ```
 */
export class CedarEngine {
  /** `sha256:<hex>` of the schema and every policy source: names the set every decision used. */
  readonly version: string;
  readonly policies: ReadonlyMap<string, LoadedPolicy>;
  /** Validator warnings (e.g. a policy whose scope can never match), each with its location. */
  readonly warnings: readonly PolicyProblem[];
  readonly #cache: DecisionCache;
  /** Each request is evaluated against the policies whose scope can match it, preparsed on first use. */
  readonly #slices: PolicySlices;
  /** Action entities with their groups, from the schema: Cedar needs them to decide `action in`. */
  readonly #actions: ReadonlyMap<string, CedarEntity>;
  /** Each action's entity and those of every group it is in, transitively: what Cedar needs to decide `action in`. */
  readonly #actionClosures: ReadonlyMap<string, readonly CedarEntity[]>;
  /** Every action entity of the schema: the hierarchy slices are worked out in, and what goes when any action's groups may be asked about. */
  readonly #allActions: readonly CedarEntity[];
  #evaluationsInParts = 0;
  #evaluationsInJavaScript = 0;
  /** While the constructor warms wasm up: every evaluation goes to wasm. */
  #warmingUp = false;
  readonly #onEvaluation: ((evaluator: PolicyEvaluator) => void) | undefined;
  /** Each policy's position in the set as loaded. */
  readonly #positions: ReadonlyMap<string, number>;
  readonly #scopes: readonly (PolicyScope & { readonly id: string; readonly effect: "permit" | "forbid" })[];

  /** Nothing this engine decides is enforced: every deny is recorded as a shadow and the call goes on. */
  readonly shadowAll: boolean;
  /** The ids of the policies in shadow (annotated `@shadow`): evaluated and recorded, never enforced. */
  readonly shadowPolicies: ReadonlySet<string>;

  constructor(
    documents: readonly PolicyDocument[],
    schema: cedarTypes.Schema,
    options: {
      decisionCacheSize?: number;
      enforcement?: "enforce" | "shadow";
      /** @internal The slice caches' limits (tests cut slices in parts at any size). */
      sliceLimits?: Partial<SliceLimits>;
      /** Which evaluator decides a request the memo cannot answer (see {@link PolicyEvaluator}). */
      evaluator?: PolicyEvaluator;
      /** @internal Told of each evaluation of a slice part (not the warm-up's), and where it ran: the metrics count them. */
      onEvaluation?: (evaluator: PolicyEvaluator) => void;
    } = {},
  ) {
    const loadedSchema = loadSchema(schema);
    const problems: PolicyProblem[] = [];
    const warnings: PolicyProblem[] = [];
    const policies = new Map<string, ParsedPolicy>();
    for (const document of documents) {
      for (const policy of loadDocumentSafely(document, loadedSchema.forValidation, problems, warnings)) {
        const existing = policies.get(policy.id);
        if (existing) {
          problems.push({
            source: policy.source,
            line: policy.line,
            message: `policy id "${policy.id}" is already used at ${existing.source}:${existing.line}: give each @id a unique value`,
          });
          continue;
        }
        const guardrailArn = GUARDRAIL_ARN_IN_TEXT.exec(JSON.stringify([policy.scope, policy.conditions]));
        if (guardrailArn !== null) {
          problems.push({
            source: policy.source,
            line: policy.line,
            message: `policy "${policy.id}" names a guardrail by its ARN (${guardrailArn[0]}): name it by its id ("${guardrailArn[1]}"), which calls naming it either way are decided with`,
          });
          continue;
        }
        policies.set(policy.id, policy);
      }
    }
    if (problems.length > 0) throw new PolicyLoadError(problems);

    // Policies annotated @shadow are evaluated and recorded, never enforced: each slice preparses
    // its enforced policies, and (when it holds shadow ones) a second set with them too.
    const shadowPolicies = new Set([...policies.values()].filter((p) => "shadow" in p.annotations).map((p) => p.id));
    this.#actions = loadedSchema.actions;
    this.#actionClosures = actionClosures(this.#actions);
    this.#allActions = [...this.#actions.values()];
    // Set ids are unique across copies of this library in one process (an ESM and a CommonJS copy
    // share the one cedar-wasm instance, and its preparsed sets, by id).
    this.#slices = new PolicySlices(
      [...policies.values()].map(({ id, text, effect, scope, conditions, annotations }) => ({
        id,
        text,
        effect,
        shadow: shadowPolicies.has(id),
        ...scope,
        conditions,
        annotations,
      })),
      `bedrock-warden-${randomUUID()}`,
      this.#allActions,
      options.sliceLimits,
      (options.evaluator ?? "javascript") === "javascript",
    );
    this.shadowPolicies = shadowPolicies;
    this.shadowAll = options.enforcement === "shadow";
    this.#onEvaluation = options.onEvaluation;
    preparsedSets.register(this, this.#slices.liveSetIds);
    this.#cache = new DecisionCache(options.decisionCacheSize ?? DEFAULT_DECISION_CACHE_SIZE);
    this.policies = new Map(
      [...policies].map(([id, { text: _text, conditions: _conditions, offset: _offset, scope: _scope, ...policy }]) => [id, Object.freeze(policy)]),
    );
    this.#positions = new Map([...policies.keys()].map((id, position) => [id, position]));
    this.#scopes = [...policies.values()].map(({ id, effect, scope }) => Object.freeze({ id, effect, ...scope }));
    this.warnings = warnings;
    this.version = versionOf(schema, documents);
    this.#warmUp();
  }

  /**
   * Decides one request. Never throws: a malformed request, an engine failure, an evaluation
   * error in any policy (even a `forbid`) or a Cedar `failure` answer all deny, with the cause in
   * `errors`.
   */
  authorize(request: CedarRequest): Decision {
    return this.authorizeKept(request).decision;
  }

  /**
   * @internal As {@link authorize}, with the key under which the memo keeps the decision, when it
   * keeps it (a clean answer, memoization on): {@link memoized} finds it again, for as long as the
   * memo holds it and the engine can decide.
   */
  authorizeKept(request: CedarRequest): KeptDecision {
    // Lost for every engine at once: they all share the one wasm instance.
    const lost = wasmLost();
    if (lost !== undefined) return unkept(this.#shadowed(this.#denial(refsOf(request), [lost], ["the policy engine is unavailable"])));
    // Plain loops, not Array callbacks, on this path: Node 20's V8 has crashed ("Fatal error ...
    // unreachable code", in Deoptimizer::DoComputeBuiltinContinuation) lazily deoptimizing this
    // function inside an inlined Array.prototype.map continuation after a long run.
    let sliceParts: readonly Slice[];
    try {
      // cedar-wasm leaks stack on every call it throws on, and dies after ~1,150 of them: never let
      // a malformed call reach it.
      assertRequestEnvelope(request);
      let sealed = 0;
      for (let i = 0; i < request.entities.length; i++) {
        const entity = request.entities[i];
        if (isSealedEntity(entity)) sealed++;
        else assertEntity(entity, `entities[${i}]`);
      }
      const [first, second] = request.entities;
      // The request builder's shape: the sealed principal, then the sealed resource, nothing else.
      sliceParts =
        request.entities.length === 2 && sealed === 2 && sameUid(first!.uid, request.principal) && sameUid(second!.uid, request.resource)
          ? this.#slices.sliceForSealed(request, first!, second!)
          : this.#slices.sliceFor(request);
    } catch (error) {
      return unkept(this.#shadowed(this.#denial(refsOf(request), [`malformed authorization request: ${(error as Error).message}`], ["the request could not be evaluated"])));
    }
    // The key is each part of the slice and what Cedar will receive with it: exactly, but for
    // context values a part only tests with literals, which stand by the tests' outcomes,
    // and for kept prepared entities, which stand by a token (JSON never holds a raw newline or tab,
    // so the joins are unambiguous).
    let serialized = `${uidJson(request.principal)}\n${uidJson(request.action)}\n${uidJson(request.resource)}`;
    const calls: PartCall[] = [];
    for (let p = 0; p < sliceParts.length; p++) {
      const part = sliceParts[p] as Slice;
      // No schema is passed per request: with one, Cedar insists on every context key, and pruning
      // the keys the part's policies do not read saves more than per-request validation would catch
      // (requests are built here, and the policies were validated at load).
      const context = pruneContext(request.context, part.reads);
      serialized += `\t${part.serial}\n${contextKey(context, part.compared)}`;
      const call = this.#partCall(request, part, context);
      serialized += call.key;
      calls.push(call);
    }
    const key = this.#cache.key(serialized);
    const cached = key === undefined ? undefined : this.#cache.get(key);
    if (cached !== undefined) return { decision: cached, memoKey: key };
    const refs = refsOf(request);
    // Each part is decided in JavaScript when its policies and this request are in the subset
    // that evaluator decides exactly as Cedar does; else in wasm, preparsed on first need.
    let preparsed = false;
    const preparse = (): Decision | undefined => {
      if (preparsed) return undefined;
      preparsed = true;
      try {
        this.#slices.use(sliceParts, true);
        return undefined;
      } catch (error) {
        const errors = [`policy engine error: the Cedar engine could not preparse the policies that apply (${(error as Error).message}); if this persists, restart the process`];
        return this.#shadowed(this.#denial(refs, errors, ["the policy engine failed"]));
      }
    };
    if (calls.length > 1) this.#evaluationsInParts++;
    const enforced: Evaluation[] = [];
    const full: Evaluation[] = [];
    let shadowPolicies = false;
    for (let call of calls) {
      const part = call.slice;
      const context = call.context;
      if (part.hasShadow) shadowPolicies = true;
      let entities = this.#withActions(call, refs);
      const answer = this.#warmingUp ? undefined : part.program?.evaluate({ principal: request.principal, action: request.action, resource: request.resource, context, entities });
      if (answer !== undefined) {
        this.#evaluationsInJavaScript++;
        this.#onEvaluation?.("javascript");
        enforced.push({ ...answer.enforced, errors: [] });
        full.push({ ...answer.full, errors: [] });
        continue;
      }
      const failedPreparse = preparse();
      if (failedPreparse !== undefined) return unkept(failedPreparse);
      // Preparsing found a policy wasm must be given with its scope: it needs what the scope reads.
      // (The memo key stands: what the policies' conditions read is in it, and the slice's scopes are decided.)
      if (part.entities !== call.plan) {
        call = this.#partCall(request, part, context);
        entities = this.#withActions(call, refs);
      }
      if (!this.#warmingUp) this.#onEvaluation?.("wasm");
      const wasmCall = { principal: request.principal, action: request.action, resource: request.resource, context, entities, preparsedPolicySetId: part.enforcedSetId };
      const enforcedPart = this.#evaluate(wasmCall, refs);
      if ("failed" in enforcedPart) return unkept(this.#shadowed(enforcedPart.failed));
      // What the policies in shadow would decide: the part with its shadow policies.
      const fullPart = part.fullSetId === undefined ? enforcedPart : this.#evaluate({ ...wasmCall, preparsedPolicySetId: part.fullSetId }, refs);
      if ("failed" in fullPart) return unkept(this.#shadowed(fullPart.failed));
      enforced.push(enforcedPart);
      full.push(fullPart);
    }
    if (!preparsed) this.#slices.use(sliceParts, false);
    const enforcedDecision = this.#decisionOf(combineEvaluations(enforced), refs);
    const fullDecision = shadowPolicies ? this.#decisionOf(combineEvaluations(full), refs) : enforcedDecision;
    let result = fullDecision.effect === enforcedDecision.effect ? enforcedDecision : freezeDecision({ ...enforcedDecision, shadow: shadowOf(fullDecision) });
    if (this.shadowAll) result = fullDecision.effect === "deny" ? this.#shadowed(fullDecision) : fullDecision;
    // Only clean answers are remembered: an engine fault must be retried, never replayed.
    if (key !== undefined) this.#cache.set(key, result);
    return { decision: result, memoKey: key };
  }

  /**
   * @internal The decision the memo keeps under `memoKey` (from {@link authorizeKept}), or undefined
   * when it no longer does, or when the wasm instance is lost (then nothing is replayed, by any
   * engine: {@link authorize} denies).
   */
  memoized(memoKey: string): Decision | undefined {
    return wasmLost() === undefined ? this.#cache.get(memoKey) : undefined;
  }

  /** @internal How many decisions the memo keeps at most (0: memoization is off). */
  get memoCapacity(): number {
    return this.#cache.capacity;
  }


  /** A deny reached without a clean evaluation (no determining policies). */
  #denial(refs: DecisionRefs, errors: string[], reasons: string[]): Decision {
    return freezeDecision({ effect: "deny", ...refs, policies: [], reasons, errors, policySetVersion: this.version });
  }

  /**
   * One evaluation in wasm against one preparsed set: Cedar's answer, or `{ failed }` for an
   * engine failure or a Cedar `failure` answer (a deny that must not be memoized).
   */
  #evaluate(call: Record<string, unknown>, refs: DecisionRefs): Evaluation | { failed: Decision } {
    const deny = (errors: string[], reasons: string[]): Decision => this.#denial(refs, errors, reasons);
    let answer: cedarTypes.AuthorizationAnswer;
    try {
      answer = cedar.statefulIsAuthorized(call as unknown as cedarTypes.StatefulAuthorizationCall);
    } catch (error) {
      // A wasm trap (e.g. "memory access out of bounds") leaves the instance and its preparsed sets
      // unusable: this call is denied, and the instance replaced (every engine preparses its sets
      // again before its next evaluation). When even that fails, every later call is denied.
      if (error instanceof Error && error.name === "RuntimeError") {
        try {
          reinstantiateWasm();
          return { failed: deny([`policy engine error: ${error.message} (the Cedar engine was restarted; this call was denied)`], ["the policy engine failed"]) };
        } catch (restartError) {
          markWasmLost(`the Cedar engine failed and lost its state (${error.message}), and could not be restarted (${(restartError as Error).message}); restart the process`);
        }
      }
      return { failed: deny([`policy engine error: ${(error as Error).message}`], ["the policy engine failed"]) };
    }
    if (answer.type !== "success") {
      const errors: string[] = [];
      for (const error of answer.errors) errors.push(withoutValues(detail(error)));
      return { failed: deny(errors, ["the policy engine could not evaluate the request"]) };
    }
    const { diagnostics } = answer.response;
    const errors: EvaluationError[] = [];
    for (const error of diagnostics.errors) errors.push({ policyId: error.policyId, message: withoutValues(detail(error.error)) });
    return { allowed: answer.response.decision === "allow", determining: diagnostics.reason, errors };
  }

  /**
   * The decision of an evaluation: any evaluation error is a deny; determining policies and errors
   * in load order (Cedar answers with a hash set's order, and a slice is in parts).
   */
  #decisionOf(evaluation: Evaluation, refs: DecisionRefs): Decision {
    if (evaluation.errors.length > 0) {
      const errors: string[] = [];
      for (const error of this.#inLoadOrder(evaluation.errors, (e) => e.policyId)) errors.push(`policy ${error.policyId}: ${error.message}`);
      return this.#denial(refs, errors, [POLICY_ERROR_REASON]);
    }
    const decision = evaluation.allowed ? "allow" : "deny";
    const determining = this.#inLoadOrder(evaluation.determining, (id) => id);
    const reasons: string[] = [];
    for (const id of determining) {
      reasons.push(this.policies.get(id)?.annotations["reason"] ?? `${decision === "allow" ? "permitted" : "forbidden"} by policy ${id}`);
    }
    if (reasons.length === 0) reasons.push("no policy permits this request (default deny)");
    return freezeDecision({ effect: decision, ...refs, policies: determining, reasons, errors: [], policySetVersion: this.version });
  }

  #inLoadOrder<T>(items: readonly T[], idOf: (item: T) => string): T[] {
    const position = (item: T) => this.#positions.get(idOf(item)) ?? Number.MAX_SAFE_INTEGER;
    return items.length < 2 ? [...items] : [...items].sort((a, b) => position(a) - position(b));
  }

  /** In shadow mode (the whole engine) a deny — by the policies or by a failure — is recorded, not enforced. */
  #shadowed(denial: Decision): Decision {
    if (!this.shadowAll || denial.effect !== "deny") return denial;
    return freezeDecision({
      effect: "allow",
      principal: denial.principal,
      action: denial.action,
      resource: denial.resource,
      policies: [],
      reasons: ["shadow mode: this call would be denied, and was let through"],
      errors: [],
      policySetVersion: this.version,
      shadow: shadowOf(denial),
    });
  }

  /**
   * What a part of the slice is given of the request's entities, under the part's current plan,
   * and what stands for them in the memo key.
   */
  #partCall(request: CedarRequest, part: Slice, context: Readonly<Record<string, CedarValue>>): PartCall {
    const plan = part.entities;
    const entities: CedarEntity[] = [];
    let key = "";
    // Action entities go when a condition asks `action in` (the action and its groups), and all of
    // them when a condition may ask about any entity's groups, or when an entity sent with its
    // parents names an action as a parent (its ancestors then run through the action groups).
    let actions: "none" | "closure" | "all" = plan.action ? (part.reads.hierarchy.any ? "all" : "closure") : "none";
    for (let i = 0; i < request.entities.length; i++) {
      const entity = this.#prepare(request.entities[i] as CedarEntity, request, part);
      if (entity === undefined) continue;
      key += `\n${entity.key}`;
      entities.push(entity.entity);
      if (entity.namesAction) actions = "all";
    }
    return { slice: part, plan, context, entities, actions, key };
  }

  /** A part's entities with the action entities it needs: what its evaluator is given (once per part call). */
  #withActions(call: PartCall, refs: DecisionRefs): readonly CedarEntity[] {
    if (call.actions !== "none") for (const actionEntity of call.actions === "all" ? this.#allActions : (this.#actionClosures.get(refs.action) ?? [])) call.entities.push(actionEntity);
    return call.entities;
  }

  /**
   * An entity (checked already) pruned to what the slice's policies read in its role, with what
   * stands for it in the memo key (its JSON; a token for one prepared once and kept); undefined when
   * the slice's policies need nothing of it. Entities the request builder sealed (frozen, built once
   * per identity or model) are prepared once per slice.
   */
  #prepare(entity: CedarEntity, request: CedarRequest, slice: Slice): PreparedEntity | undefined {
    const isPrincipal = sameUid(entity.uid, request.principal);
    const isResource = sameUid(entity.uid, request.resource);
    // An entity that is both principal and resource is read in both roles: it goes whole.
    if (isPrincipal && isResource) return { entity, key: JSON.stringify(entity), namesAction: namesAnActionAsParent(entity, this.#actions) };
    const role: EntityRole = isPrincipal ? "principal" : isResource ? "resource" : "other";
    const plan = role === "other" ? (slice.entities.others ? "whole" : "omit") : slice.entities[role];
    if (plan === "omit") return undefined;
    const sealed = isSealedEntity(entity);
    const known = sealed ? slice.prepared.get(entity)?.[role] : undefined;
    if (known) return known;
    const pruned = pruneEntity(entity, role, slice.reads);
    const sent = plan === "whole" ? pruned : { ...pruned, parents: [] };
    const namesAction = plan === "whole" && namesAnActionAsParent(sent, this.#actions);
    const prepared = { entity: sent, key: sealed ? `#${++preparedTokens}` : JSON.stringify(sent), namesAction };
    if (sealed) slice.prepared.set(entity, { ...slice.prepared.get(entity), [role]: prepared });
    return prepared;
  }

  /**
   * @internal The scope of every policy (Cedar JSON), for what can be worked out without a
   * request: e.g. the models a workload's session policy may name.
   */
  policyScopes(): readonly (PolicyScope & { readonly id: string; readonly effect: "permit" | "forbid" })[] {
    return this.#scopes;
  }

  /** @internal The actions of the schema that are `in` the given action (itself included), transitively. */
  actionsIn(actionId: string): string[] {
    const target = entityRef(`${NAMESPACE}::Action`, actionId);
    const members: string[] = [];
    // Each closure is the action itself, then every group it is in.
    for (const closure of this.#actionClosures.values()) {
      if (closure.some((entity) => entityRef(entity.uid.type, entity.uid.id) === target)) members.push((closure[0] as CedarEntity).uid.id);
    }
    return members;
  }

  /** How many decisions are memoized. */
  get cachedDecisions(): number {
    return this.#cache.size;
  }

  /** @internal The characters of the memo's keys (bounded: see `MAX_MEMO_CHARACTERS`). */
  get memoCharacters(): number {
    return this.#cache.characters;
  }

  /** @internal How many evaluations were made in two parts (policies shared by every workload, and the others). */
  get evaluationsInParts(): number {
    return this.#evaluationsInParts;
  }

  /** @internal How many slice parts the JavaScript evaluator decided (the others went to wasm). */
  get evaluationsInJavaScript(): number {
    return this.#evaluationsInJavaScript;
  }

  #warmUp(): void {
    // The first evaluation compiles the wasm lazily (~250-300 ms), and the first marshalling of each
    // kind of value is slow too: pay both here, with a request shaped like a real one, not on a user's
    // call — in wasm, even when the JavaScript evaluator could decide it: a later request may need wasm.
    this.#warmingUp = true;
    try {
      this.#warmUpRequest();
    } finally {
      this.#warmingUp = false;
    }
  }

  #warmUpRequest(): void {
    const principal = { type: "Bedrock::Workload", id: "bedrock-warden/warm-up" };
    const resource = { type: "Bedrock::Model", id: "bedrock-warden.warm-up" };
    this.authorize({
      principal,
      action: { type: "Bedrock::Action", id: "Converse" },
      resource,
      context: {
        environment: "warm-up",
        region: "warm-up",
        streaming: false,
        actionType: "read",
        dataSensitivity: ["warm-up"],
        toolsOffered: ["warm-up"],
        payloadInspected: true,
        maxTokens: 1,
        purpose: "warm-up",
      },
      entities: [
        { uid: principal, attrs: { environment: "warm-up", owner: "warm-up" }, parents: [{ type: "Bedrock::Group", id: "warm-up" }], tags: { warm: "up" } },
        { uid: resource, attrs: { kind: "foundation-model", provider: "bedrock-warden" }, parents: [{ type: "Bedrock::Provider", id: "bedrock-warden" }] },
      ],
    });
  }
}

/** How a decision names what it was about (`Bedrock::Workload::"…"`). */
interface DecisionRefs {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
}

/** @internal A decision, and the key under which the engine's memo keeps it (undefined when it does not). */
export interface KeptDecision {
  readonly decision: Decision;
  readonly memoKey: string | undefined;
}

function unkept(decision: Decision): KeptDecision {
  return { decision, memoKey: undefined };
}

/** One part of a request's slice, as its evaluator is given it: its pruned context and entities. */
interface PartCall {
  readonly slice: Slice;
  /** The part's entity plan the entities were chosen by. */
  readonly plan: EntityPlan;
  readonly context: Readonly<Record<string, CedarValue>>;
  /** The request's entities as the plan prunes them (the action entities are added before evaluation). */
  readonly entities: CedarEntity[];
  readonly actions: "none" | "closure" | "all";
  /** What stands for the entities in the memo key. */
  readonly key: string;
}

interface EvaluationError {
  readonly policyId: string;
  readonly message: string;
}

/** Cedar's answer for one set: its decision, the determining policies (the satisfied permits, or forbids), the erroring ones. */
export interface Evaluation {
  readonly allowed: boolean;
  readonly determining: readonly string[];
  readonly errors: readonly EvaluationError[];
}

/**
 * The answer of the union of disjoint sets, from the answer of each, as Cedar would give it for
 * the union: a satisfied forbid in any denies (the determining policies: every satisfied forbid),
 * else a satisfied permit in any allows (every satisfied permit), else the default deny; the
 * erroring policies are all of them. Exact because a Cedar answer lists the satisfied forbids when
 * it denies by one, the satisfied permits when it allows, and none otherwise.
 *
 * @example
 * ```ts
 * combineEvaluations([{ allowed: true, determining: ["p1"], errors: [] }, { allowed: false, determining: [], errors: [] }]);
 * // { allowed: true, determining: ["p1"], errors: [] }
 * ```
 */
export function combineEvaluations(evaluations: readonly Evaluation[]): Evaluation {
  if (evaluations.length === 1) return evaluations[0] as Evaluation;
  const permits: string[] = [];
  const forbids: string[] = [];
  const errors: EvaluationError[] = [];
  for (const evaluation of evaluations) {
    (evaluation.allowed ? permits : forbids).push(...evaluation.determining);
    errors.push(...evaluation.errors);
  }
  const allowed = forbids.length === 0 && permits.length > 0;
  return { allowed, determining: allowed ? permits : forbids, errors };
}

/** Tokens standing for kept prepared entities in decision cache keys: never reused. */
let preparedTokens = 0;

/** An entity reference's JSON: built once for the request builder's frozen references. */
function uidJson(uid: { type: string; id: string }): string {
  return sealedUidJson(uid) ?? JSON.stringify(uid);
}

function sameUid(a: { type?: unknown; id?: unknown } | undefined, b: { type: string; id: string }): boolean {
  return a?.type === b.type && a?.id === b.id;
}

/** Decisions are shared (memoized, and carried by errors the caller holds): nobody may change one. */
/** The reason of a denial because a policy erred while Cedar evaluated the request. */
export const POLICY_ERROR_REASON = "a policy failed to evaluate; failing closed";

function freezeDecision(decision: Decision): Decision {
  Object.freeze(decision.policies);
  Object.freeze(decision.reasons);
  Object.freeze(decision.errors);
  if (decision.shadow) Object.freeze(decision.shadow);
  return Object.freeze(decision);
}

function shadowOf(decision: Decision): ShadowDecision {
  return Object.freeze({
    effect: decision.effect,
    policies: Object.freeze([...decision.policies]),
    reasons: Object.freeze([...decision.reasons]),
    errors: Object.freeze([...decision.errors]),
  });
}

function refsOf(request: CedarRequest): DecisionRefs {
  return { principal: describeUid(request?.principal), action: describeUid(request?.action), resource: describeUid(request?.resource) };
}

function describeUid(uid: { type?: unknown; id?: unknown } | undefined): string {
  return typeof uid?.type === "string" && typeof uid.id === "string" ? entityRef(uid.type, uid.id) : "(malformed)";
}

function namesAnActionAsParent(entity: CedarEntity, actions: ReadonlyMap<string, CedarEntity>): boolean {
  for (const parent of entity.parents) if (actions.has(entityRef(parent.type, parent.id))) return true;
  return false;
}

/** For each action: its entity, then the entities of every action group it is in, transitively (each once). */
function actionClosures(actions: ReadonlyMap<string, CedarEntity>): Map<string, CedarEntity[]> {
  const closures = new Map<string, CedarEntity[]>();
  for (const [ref, entity] of actions) {
    const closure = [entity];
    const seen = new Set([ref]);
    for (let i = 0; i < closure.length; i++) {
      for (const parent of (closure[i] as CedarEntity).parents) {
        const parentRef = entityRef(parent.type, parent.id);
        const parentEntity = actions.get(parentRef);
        if (parentEntity === undefined || seen.has(parentRef)) continue;
        seen.add(parentRef);
        closure.push(parentEntity);
      }
    }
    closures.set(ref, closure);
  }
  return closures;
}

/** A schema as engines use it: checked, its actions read, in the form Cedar validates fastest. */
interface LoadedSchema {
  /** Its JSON form (Cedar reads it ~2× faster than the text, on every validation), or the schema as given. */
  readonly forValidation: cedarTypes.Schema;
  readonly actions: ReadonlyMap<string, CedarEntity>;
}

/** Schemas loaded lately, by their text: another engine with one (a reload, another governance) does not check it again. */
const loadedSchemas = new LruMap<string, LoadedSchema>(8);

/**
 * Checks a schema and reads its actions, once per schema text in the process: for the shipped
 * schema, ~10–13 ms that every engine built with it paid again. Throws {@link PolicyLoadError}
 * naming what Cedar refuses.
 */
function loadSchema(schema: cedarTypes.Schema): LoadedSchema {
  // An object is read as its JSON, copied: what is checked, kept and validated against is that copy,
  // never the caller's object (which they may change). Texts and JSON are keyed apart: the JSON of
  // a schema is not a schema text.
  let key: string | undefined;
  if (typeof schema === "string") key = `text:${schema}`;
  else {
    try {
      const json = JSON.stringify(schema);
      if (typeof json === "string") {
        key = `json:${json}`;
        schema = JSON.parse(json) as cedarTypes.Schema;
      }
    } catch {
      // Not JSON (a cycle, a BigInt): Cedar says what is wrong with it below; nothing is kept.
    }
  }
  const known = key === undefined ? undefined : loadedSchemas.get(key);
  if (known !== undefined) return known;
  let schemaCheck: cedarTypes.CheckParseAnswer;
  try {
    schemaCheck = cedar.checkParseSchema(schema);
  } catch (error) {
    throw new PolicyLoadError([{ source: "schema", message: `the Cedar engine failed reading the schema (${(error as Error)?.name}: ${(error as Error)?.message})` }]);
  }
  if (schemaCheck.type !== "success") {
    throw new PolicyLoadError(schemaCheck.errors.map((e) => ({ source: "schema", message: detail(e) })));
  }
  const actions = actionEntities(schema);
  let forValidation = schema;
  if (typeof schema === "string") {
    const json = cedar.schemaToJson(schema);
    if (json.type === "success") forValidation = json.json;
  }
  // Shared by every engine built with this schema: nothing may change them.
  for (const action of actions.values()) deepFreeze(action);
  if (key === undefined) return { forValidation, actions };
  const loaded: LoadedSchema = Object.freeze({ forValidation: deepFreeze(forValidation), actions });
  loadedSchemas.set(key, loaded);
  return loaded;
}

/**
 * The schema's action entities with their groups. Group names are resolved as Cedar resolves them
 * (`Action::"Mutations"` in `namespace App` is `App::Action::"Mutations"`): a group named
 * otherwise would never match a policy's `action in`.
 */
function actionEntities(schema: cedarTypes.Schema): Map<string, CedarEntity> {
  const actions = new Map<string, CedarEntity>();
  let text: string;
  if (typeof schema === "string") text = schema;
  else {
    const converted = cedar.schemaToText(schema);
    // Without its action groups, no `action in` would ever match (a forbid silently off): refuse it.
    if (converted.type !== "success") throw new PolicyLoadError([{ source: "schema", message: converted.errors.map(detail).join("; ") }]);
    text = converted.text;
  }
  const json = cedar.schemaToJsonWithResolvedTypes(text);
  if (json.type !== "success") throw new PolicyLoadError([{ source: "schema", message: json.errors.map(detail).join("; ") }]);
  for (const [namespace, definition] of Object.entries(json.json)) {
    const actionType = namespace ? `${namespace}::Action` : "Action";
    for (const [id, action] of Object.entries(definition.actions)) {
      const uid = { type: actionType, id };
      const parents = (action.memberOf ?? []).map((parent) => ({ type: parent.type ?? actionType, id: parent.id }));
      actions.set(entityRef(uid.type, uid.id), { uid, attrs: {}, parents });
    }
  }
  return actions;
}

interface ParsedPolicy extends LoadedPolicy {
  readonly text: string;
  /** Where the policy starts in its source (characters). */
  readonly offset: number;
  readonly conditions: unknown[];
  readonly scope: PolicyScope;
}

/**
 * A policy's scope in Cedar's JSON form: `{ op: "All" }`, `{ op: "==", entity }`, `{ op: "in", entity }`,
 * `{ op: "in", entities }` (actions), `{ op: "is", entity_type, in? }`.
 */
export interface PolicyScope {
  readonly principal: unknown;
  readonly action: unknown;
  readonly resource: unknown;
}

const ALL_SCOPE: PolicyScope = { principal: { op: "All" }, action: { op: "All" }, resource: { op: "All" } };

/**
 * {@link loadDocument}, with what must never reach Cedar's parser refused first (text that is not
 * a string, not well-formed Unicode, or nested beyond the parser's limits), and a failure of the
 * engine itself reported as a problem of that document (the engine was restarted by then).
 */
function loadDocumentSafely(document: PolicyDocument, schema: cedarTypes.Schema, problems: PolicyProblem[], warnings: PolicyProblem[]): ParsedPolicy[] {
  const { source, text } = (document ?? {}) as Partial<PolicyDocument>;
  if (typeof source !== "string" || typeof text !== "string") {
    problems.push({ source: typeof source === "string" ? source : "(unnamed)", message: "a policy document must be { source: string, text: string }" });
    return [];
  }
  // cedar-wasm throws on a lone surrogate instead of answering.
  if (!source.isWellFormed() || !text.isWellFormed()) {
    problems.push({ source, message: "the policy source name or text is not well-formed Unicode (a lone surrogate): Cedar would read a replacement character instead of what was written" });
    return [];
  }
  const limits = policyTextProblems(source, text);
  if (limits.length > 0) {
    problems.push(...limits);
    return [];
  }
  try {
    return loadDocument({ source, text }, schema, problems, warnings);
  } catch (error) {
    problems.push({ source, message: `the Cedar engine failed reading this text (${(error as Error)?.name}: ${(error as Error)?.message}); simplify it` });
    return [];
  }
}

function loadDocument(document: PolicyDocument, schema: cedarTypes.Schema, problems: PolicyProblem[], warnings: PolicyProblem[]): ParsedPolicy[] {
  const { source, text } = document;
  const lineAndColumn = lineLocator(text);
  // Cedar reports UTF-8 byte offsets, into the text it was given.
  const at = (within: string, start: number, offset: number | undefined) =>
    offset === undefined ? {} : lineAndColumn(start + Buffer.from(within, "utf8").subarray(0, offset).toString("utf8").length);
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== "success") {
    for (const error of parts.errors) problems.push({ source, ...at(text, 0, error.sourceLocations?.[0]?.start), message: detail(error) });
    return [];
  }
  if (parts.policy_templates.length > 0) {
    problems.push({ source, message: "policy templates are not supported yet: write static policies" });
    return [];
  }
  let cursor = 0;
  const policies = parts.policies.map((policyText, index): ParsedPolicy => {
    // The parts are the source's own slices; finding each one gives the policy's line for its default id.
    const found = text.indexOf(policyText, cursor);
    if (found >= 0) cursor = found + policyText.length;
    const offset = Math.max(found, 0);
    const line = lineAndColumn(offset).line;
    const json = cedar.policyToJson(policyText);
    if (json.type !== "success") {
      // It parsed as part of the set; failing to convert it alone would be a Cedar bug, never a reason to guess.
      problems.push({ source, line, message: json.errors.map(detail).join("; ") });
      return { id: `${source}#${index}`, source, line, offset, effect: "forbid", annotations: {}, text: policyText, conditions: [], scope: ALL_SCOPE };
    }
    const annotations = json.json.annotations ?? {};
    const id = annotations["id"] ?? (found >= 0 ? `${source}:${line}` : `${source}#${index}`);
    const { principal, action, resource } = json.json;
    return { id, source, line, offset, effect: json.json.effect, annotations, text: policyText, conditions: json.json.conditions, scope: { principal, action, resource } };
  });
  // Validated under their own ids, so that each message names the policy as decisions will.
  const byId = new Map(policies.map((policy) => [policy.id, policy]));
  if (byId.size !== policies.length) return policies; // duplicate ids: reported by the caller, validated once they are unique
  const validation = cedar.validate({ schema, policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) } });
  if (validation.type !== "success") {
    for (const error of validation.errors) problems.push({ source, message: detail(error) });
    return [];
  }
  // Cedar repeats one mistake once per action the policy may apply to: report it once, naming them all.
  const merged = new Map<string, { into: PolicyProblem[]; problem: PolicyProblem; actions: string[] }>();
  const report = (into: PolicyProblem[], policyId: string, error: cedarTypes.DetailedError) => {
    const policy = byId.get(policyId);
    const where: { line?: number; column?: number } = policy ? at(policy.text, policy.offset, error.sourceLocations?.[0]?.start) : {};
    const message = detail(error);
    const action = /for (\S+::Action::"[^"]*")/.exec(message)?.[1];
    const general = action === undefined ? message : message.replace(` for ${action}`, " for {actions}");
    const key = `${into === problems ? "e" : "w"}:${where.line}:${where.column}:${general}`;
    const known = merged.get(key);
    if (known) {
      if (action !== undefined) known.actions.push(action);
      return;
    }
    merged.set(key, { into, problem: { source, ...where, message: general }, actions: action === undefined ? [] : [action] });
  };
  for (const { policyId, error } of validation.validationErrors) report(problems, policyId, error);
  for (const { policyId, error } of validation.validationWarnings) report(warnings, policyId, error);
  for (const { into, problem, actions } of merged.values()) {
    const named = actions.length === 1 ? actions[0]! : `${actions.length} actions (${actions.map((a) => /"([^"]*)"/.exec(a)?.[1] ?? a).sort().join(", ")})`;
    into.push({ ...problem, message: problem.message.replace("{actions}", named) });
  }
  return policies;
}

/**
 * Line and column of a character offset in `text`. The line starts are found once: a set of
 * 10,000 policies in one file asks for every policy's line, and scanning from the start each time
 * took ~35 s.
 */
function lineLocator(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return (offset) => {
    const clamped = Math.min(Math.max(offset, 0), text.length);
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((starts[middle] as number) <= clamped) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: clamped - (starts[low] as number) + 1 };
  };
}

/**
 * Cedar's evaluation errors quote the values involved (`integer overflow while attempting to
 * multiply the values \`9007199254740991\` and \`100000\``): those come from the request — a tool's
 * input, a purpose — and must not reach records, spans and errors. Cedar prints a value as a
 * literal (a number, a "quoted string", a record or set), so a quoted segment that is not a bare
 * name (an attribute, a type, a function) is replaced.
 */
export function withoutValues(message: string): string {
  return message.replace(/`([^`]*)`/g, (quoted, inside: string) => (/^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/.test(inside) ? quoted : "`…`"));
}

function detail(error: cedarTypes.DetailedError): string {
  return error.help ? `${error.message} (${error.help})` : error.message;
}

function versionOf(schema: cedarTypes.Schema, documents: readonly PolicyDocument[]): string {
  const hash = createHash("sha256").update(typeof schema === "string" ? schema : JSON.stringify(schema)).update("\0");
  for (const { source, text } of [...documents].sort((a, b) => (a.source < b.source ? -1 : 1))) {
    hash.update(source).update("\0").update(text).update("\0");
  }
  return `sha256:${hash.digest("hex")}`;
}
