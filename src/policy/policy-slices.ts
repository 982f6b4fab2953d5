/**
 * Policy slicing: each request is evaluated against only the policies whose scope can match it
 * ({@link PolicyIndex}), so a decision costs the same at 10 or 10,000 policies. cedar-wasm's
 * `statefulIsAuthorized` clones its whole preparsed set on every call (~3.5 µs per policy,
 * measured here): a slice of a few policies is what keeps that flat.
 *
 * A slice is named by the policies it holds (requests that share their applicable policies share
 * one), compiled for the JavaScript evaluator when its policies allow it, preparsed in cedar-wasm
 * when a request of it first needs wasm, and cached: which slice a request gets is memoized by its
 * scope (principal, action, resource and their ancestors), the slices are bounded by count and by
 * the policies they hold, and an evicted slice's wasm set is emptied and
 * its id reused (cedar-wasm cannot delete a set: fresh ids would grow its memory for good). Each
 * slice also knows what its policies read, so requests are pruned to that.
 * @module
 */
import { wasm as cedar, wasmGeneration } from "./cedar-wasm.js";
import { ancestorsOf, hierarchyOf, isReadableScope, isUnanchored, PolicyIndex, type Hierarchy } from "./policy-index.js";
import { comparedContextPaths, type ComparedPath } from "./context-comparisons.js";
import { policyReads, type EntityRole, type PolicyReads } from "./policy-reads.js";
import { entityRef } from "./decision.js";
import { scopeFreeText } from "./scope-erasure.js";
import { LruMap } from "./lru-map.js";
import { compilePolicy, SubsetProgram, type CompiledPolicy } from "./subset-evaluator.js";
import type { CedarEntity, CedarRequest } from "./request-shape.js";

/** A policy as slices need it. */
export interface SlicedPolicy {
  readonly id: string;
  readonly text: string;
  readonly effect: "permit" | "forbid";
  /** Annotated `@shadow`: evaluated and recorded, never enforced. */
  readonly shadow: boolean;
  readonly principal: unknown;
  readonly action: unknown;
  readonly resource: unknown;
  /** Cedar's JSON of its `when`/`unless` clauses: what it reads. */
  readonly conditions: unknown[];
  readonly annotations: Readonly<Record<string, string>>;
}

/** An entity pruned to what a slice reads, and what stands for it in the decision cache's key. */
export interface PreparedEntity {
  readonly entity: CedarEntity;
  /**
   * Its JSON; or, for an entity prepared once and kept (a sealed one), a token unique to this
   * prepared entity in the process: the same token always stands for the same JSON.
   */
  readonly key: string;
  /** Whether one of its parents is an action (its ancestors then run through the action groups). */
  readonly namesAction: boolean;
}

/**
 * Which of a request's entities a slice's evaluation needs. A slice's policies are sent to wasm
 * with their scopes already decided (every request of the slice matches them), so an entity goes
 * only when a condition reads its attributes or tags, and its parents only when a condition asks
 * whether it is `in` something.
 */
export interface EntityPlan {
  readonly principal: "omit" | "without-parents" | "whole";
  readonly resource: "omit" | "without-parents" | "whole";
  /** The request's other entities (groups with their own parents, an action entity it brings ...). */
  readonly others: boolean;
  /** The schema's entities of the action and its groups. */
  readonly action: boolean;
}

/** The policies that can apply to a request, preparsed. */
export interface Slice {
  /** Unique for the engine's life (never reused, unlike set ids): the decision cache keys on it. */
  readonly serial: number;
  /** The preparsed set of its enforced policies (valid once {@link PolicySlices.preparse} returned). */
  readonly enforcedSetId: string;
  /** The preparsed set with its `@shadow` policies too; only when it holds some. */
  readonly fullSetId: string | undefined;
  /** Whether it holds `@shadow` policies (then both sets are evaluated). */
  readonly hasShadow: boolean;
  /**
   * Its policies compiled to JavaScript, when every one is in the subset the JavaScript evaluator
   * decides exactly as Cedar does (and that evaluator is on); else undefined: wasm evaluates it.
   */
  readonly program: SubsetProgram | undefined;
  /** What its policies read: a request is pruned to that before it crosses into wasm. */
  readonly reads: PolicyReads;
  /** The context values its policies only test with literals: keyed in the memo by the tests' outcomes. */
  readonly compared: readonly ComparedPath[];
  /**
   * Which entities go with the request. It widens (to every entity, whole) when the slice is first
   * preparsed and a policy's text cannot be sent to wasm without its scope: a request built with
   * the plan it replaced is built again before it crosses into wasm.
   */
  readonly entities: EntityPlan;
  /** Sealed entities pruned for this slice, by role (built once per identity or model, per plan). */
  readonly prepared: WeakMap<CedarEntity, Partial<Record<EntityRole, PreparedEntity>>>;
}

interface CachedSlice extends Slice {
  /** Its policies' positions, joined: slices with the same policies are one. */
  readonly name: string;
  /** How many policies it holds. */
  readonly size: number;
  enforcedSetId: string;
  fullSetId: string | undefined;
  program: SubsetProgram | undefined;
  entities: EntityPlan;
  prepared: WeakMap<CedarEntity, Partial<Record<EntityRole, PreparedEntity>>>;
  /** Its policies' positions; dropped when it is evicted (a stale reference keeps only a stub). */
  positions: readonly number[] | undefined;
  /** The texts to preparse: cut on the first preparse (the JavaScript evaluator needs none). */
  texts: Readonly<Record<string, string>> | undefined;
  shadowTexts: Readonly<Record<string, string>> | undefined;
  /** The wasm generation it was preparsed in (-1: not yet, or evicted). */
  generation: number;
}

/** Limits of the slice caches. */
export interface SliceLimits {
  /** Scopes (principal, action, resource with their ancestors) whose slice is remembered. */
  readonly scopes: number;
  /** Slices kept (preparsed in wasm, compiled for the JavaScript evaluator, or both). */
  readonly slices: number;
  /**
   * Policies held by all cached slices together, preparsed in wasm or compiled for the JavaScript
   * evaluator (a slice may hold most of a large set).
   */
  readonly policies: number;
  /**
   * From how many applicable policies that name neither a principal nor a resource in their scope
   * (`forbid (principal, action, resource) when …`) a request's slice is cut in two parts: those,
   * shared by every workload, and the others. Below it, one slice.
   */
  readonly sharedPart: number;
}

const DEFAULT_LIMITS: SliceLimits = { scopes: 8192, slices: 512, policies: 100_000, sharedPart: 32 };

export class PolicySlices {
  readonly #policies: readonly SlicedPolicy[];
  readonly #index: PolicyIndex;
  /** Whether the index reads each policy's whole scope (only then may its scope be left out in wasm). */
  readonly #readable: readonly boolean[];
  /** Each policy's text without its scope: undefined until first needed, null when it cannot be cut safely. */
  readonly #scopeFree: (string | null | undefined)[];
  /** Each policy compiled for the JavaScript evaluator (without its scope when the index reads it): undefined until first needed, null outside the subset. */
  readonly #compiled: (CompiledPolicy | null | undefined)[];
  /** Whether slices are compiled for the JavaScript evaluator at all. */
  readonly #subset: boolean;
  readonly #limits: SliceLimits;
  readonly #setIdPrefix: string;
  /** The schema's action entities and their groups: part of every request's hierarchy, checked once. */
  readonly #actionHierarchy: Hierarchy;
  /**
   * The slice of requests made of one sealed principal and one sealed resource (the request
   * builder's: frozen for good), by action: their hierarchy cannot change, so the scope key need not
   * be worked out again on every call.
   */
  readonly #sealedPairs = new WeakMap<CedarEntity, WeakMap<CedarEntity, Map<string, readonly CachedSlice[]>>>();
  /** The slice of each request scope seen lately (least recently used first). */
  readonly #byScope: LruMap<string, readonly CachedSlice[]>;
  /** Whether each policy's scope names neither a principal nor a resource: it can apply to every workload. */
  readonly #unanchored: readonly boolean[];
  /** Every slice, by the policies it holds (least recently used first). */
  readonly #byName = new Map<string, CachedSlice>();
  /** Policies held by the cached slices (each slice counts all of its own). */
  #heldPolicies = 0;
  #nextSetId = 0;
  #nextSerial = 0;
  /** Set ids emptied by an eviction, to be reused. */
  readonly #freeSetIds: string[] = [];
  /** Every wasm set id this object has used: all emptied when it is collected (see the engine). */
  readonly liveSetIds = new Set<string>();

  /**
   * `actions`: the schema's action entities, which Cedar is given with their groups. `subset`:
   * compile slices for the JavaScript evaluator (see `subset-evaluator.ts`).
   */
  constructor(policies: readonly SlicedPolicy[], setIdPrefix: string, actions: readonly CedarEntity[], limits: Partial<SliceLimits> = {}, subset = true) {
    this.#actionHierarchy = hierarchyOf(actions);
    this.#policies = policies;
    this.#index = new PolicyIndex(policies);
    this.#readable = policies.map(isReadableScope);
    this.#unanchored = policies.map(isUnanchored);
    this.#scopeFree = new Array(policies.length);
    this.#compiled = new Array(policies.length);
    this.#subset = subset;
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    this.#byScope = new LruMap(this.#limits.scopes);
    this.#setIdPrefix = setIdPrefix;
  }

  /**
   * The slice for a request whose envelope and entities were checked: one part, or two when many
   * of its policies name neither a principal nor a resource (see {@link SliceLimits.sharedPart}).
   * Each part is evaluated on its own and the answers combined (`combineEvaluations` in the engine).
   */
  sliceFor(request: CedarRequest): readonly Slice[] {
    const hierarchy = hierarchyOf(request.entities, this.#actionHierarchy);
    const scopeKey = scopeKeyOf(request, hierarchy, this.#index);
    const known = this.#byScope.get(scopeKey);
    if (known !== undefined && this.#cached(known)) return known;
    const parts = this.#partsOf(this.#index.applicable(request.principal, request.action, request.resource, hierarchy));
    this.#byScope.set(scopeKey, parts);
    return parts;
  }

  /**
   * {@link sliceFor} for a request whose only entities are its principal and its resource, both
   * sealed (deep-frozen for good) by the request builder.
   */
  sliceForSealed(request: CedarRequest, principal: CedarEntity, resource: CedarEntity): readonly Slice[] {
    let byResource = this.#sealedPairs.get(principal);
    if (byResource === undefined) this.#sealedPairs.set(principal, (byResource = new WeakMap()));
    let byAction = byResource.get(resource);
    if (byAction === undefined) byResource.set(resource, (byAction = new Map()));
    // A type name holds no space (checked with the envelope): the pair is unambiguous.
    const action = `${request.action.type} ${request.action.id}`;
    const known = byAction.get(action);
    // An evicted slice is worked out again (and preparsed again when used).
    if (known !== undefined && this.#cached(known)) return known;
    const parts = this.sliceFor(request) as readonly CachedSlice[];
    byAction.set(action, parts);
    return parts;
  }

  /**
   * Marks the parts of a request's slice as the most recently used, and keeps the slices within
   * their limits — never evicting one of these parts. With `preparse`, also makes sure they are
   * preparsed in the current wasm instance (after a restart, again); throws when cedar-wasm
   * refuses a set. A slice the JavaScript evaluator decides is preparsed only once wasm is needed.
   */
  use(parts: readonly Slice[], preparse: boolean): void {
    const cachedParts = parts as readonly CachedSlice[];
    if (preparse) {
      // Every part is cut before any is preparsed: a cut is a Cedar parse, and one that throws
      // replaces the wasm instance, which would lose a part preparsed before it.
      for (const part of cachedParts) if (part.texts === undefined && this.#byName.get(part.name) === part) this.#cutTexts(part);
    }
    for (const part of cachedParts) this.#touch(part, preparse);
    // A restart while the parts were preparsed (cedar-wasm refusing one, a trap): those preparsed
    // before it are preparsed again, in the new instance.
    if (preparse && cachedParts.some((part) => part.generation !== wasmGeneration())) for (const part of cachedParts) this.#touch(part, true);
    this.#evict(cachedParts);
  }

  /** Whether every part is still the cached slice of its name (not evicted since). */
  #cached(parts: readonly CachedSlice[]): boolean {
    for (const part of parts) if (this.#byName.get(part.name) !== part) return false;
    return true;
  }

  /** The applicable policies as one part, or as the shared (unanchored) part and the rest. */
  #partsOf(positions: readonly number[]): readonly CachedSlice[] {
    const shared: number[] = [];
    const specific: number[] = [];
    for (const position of positions) (this.#unanchored[position] ? shared : specific).push(position);
    if (shared.length < this.#limits.sharedPart || specific.length === 0) return [this.#sliceOf(positions)];
    return [this.#sliceOf(shared), this.#sliceOf(specific)];
  }

  #touch(cached: CachedSlice, preparse: boolean): void {
    if (this.#byName.get(cached.name) !== cached) {
      // Never the case for a request's own parts (a stale slice is cut again before use).
      if (preparse) throw new Error("the slice was evicted while in use");
      return;
    }
    // Most recently used last: eviction takes the oldest.
    this.#byName.delete(cached.name);
    this.#byName.set(cached.name, cached);
    if (!preparse || cached.generation === wasmGeneration()) return;
    // Cut by use() before any part is preparsed.
    const texts = cached.texts;
    if (texts === undefined) throw new Error("the slice's texts were not cut before it was preparsed");
    cached.generation = -1;
    cached.enforcedSetId ||= this.#takeSetId();
    this.#preparseSet(cached.enforcedSetId, texts);
    if (cached.shadowTexts !== undefined) {
      cached.fullSetId ??= this.#takeSetId();
      this.#preparseSet(cached.fullSetId, { ...texts, ...cached.shadowTexts });
    }
    cached.generation = wasmGeneration();
  }

  /** How many slices are preparsed. */
  get preparsedSlices(): number {
    let count = 0;
    for (const slice of this.#byName.values()) if (slice.generation !== -1) count++;
    return count;
  }

  #sliceOf(positions: readonly number[]): CachedSlice {
    // Positions in the set, not a digest of the ids (~5 µs for every new scope): the names held
    // are bounded with the policies the slices hold.
    const name = positions.join(",");
    const known = this.#byName.get(name);
    if (known !== undefined) return known;
    const policies = positions.map((position) => this.#policies[position] as SlicedPolicy);
    // Every request given this slice matches the scope of each of its readable policies (the index
    // decided it): neither evaluator is given their scopes, and so needs no entity only a scope reads.
    let scopesDecided = true;
    let hasShadow = false;
    let compiled: CompiledPolicy[] | undefined = this.#subset ? [] : undefined;
    for (const position of positions) {
      const readable = this.#readable[position] === true;
      if (!readable) scopesDecided = false;
      if ((this.#policies[position] as SlicedPolicy).shadow) hasShadow = true;
      if (compiled !== undefined) {
        const program = this.#compiledOf(position, readable);
        if (program === null) compiled = undefined;
        else compiled.push(program);
      }
    }
    const reads = policyReads(policies);
    const slice: CachedSlice = {
      serial: this.#nextSerial++,
      name,
      size: positions.length,
      enforcedSetId: "",
      fullSetId: undefined,
      hasShadow,
      program: compiled === undefined ? undefined : new SubsetProgram(compiled),
      reads,
      compared: comparedContextPaths(policies),
      entities: planOf(reads, scopesDecided),
      prepared: new WeakMap(),
      positions,
      texts: undefined,
      shadowTexts: undefined,
      generation: -1,
    };
    this.#byName.set(name, slice);
    this.#heldPolicies += slice.size;
    return slice;
  }

  /**
   * The texts wasm is given: each readable policy's without its scope, when the cut is proven
   * equivalent (a Cedar parse, ~0.25 ms a policy: done once per policy, and only once a slice
   * needs wasm). A policy that cannot be cut keeps its scope, which wasm then evaluates: the
   * slice's plan widens to every entity, whole, with their hierarchy.
   */
  #cutTexts(cached: CachedSlice): void {
    const positions = cached.positions;
    if (positions === undefined) throw new Error("the slice was evicted while in use");
    const texts: Record<string, string> = {};
    let shadowTexts: Record<string, string> | undefined;
    let scopesDecided = true;
    for (const position of positions) {
      const policy = this.#policies[position] as SlicedPolicy;
      const scopeFree = this.#scopeFreeTextOf(position);
      if (scopeFree === null) scopesDecided = false;
      const text = scopeFree ?? policy.text;
      if (policy.shadow) (shadowTexts ??= {})[policy.id] = text;
      else texts[policy.id] = text;
    }
    if (!scopesDecided && cached.entities !== WHOLE_PLAN) {
      cached.entities = WHOLE_PLAN;
      cached.prepared = new WeakMap();
    }
    cached.texts = texts;
    cached.shadowTexts = shadowTexts;
  }

  #scopeFreeTextOf(position: number): string | null {
    let known = this.#scopeFree[position];
    if (known === undefined) {
      const policy = this.#policies[position] as SlicedPolicy;
      known = (this.#readable[position] === true && scopeFreeText(policy.text, policy)) || null;
      this.#scopeFree[position] = known;
    }
    return known;
  }

  #compiledOf(position: number, scopeDecided: boolean): CompiledPolicy | null {
    let known = this.#compiled[position];
    if (known === undefined) {
      known = compilePolicy(this.#policies[position] as SlicedPolicy, scopeDecided) ?? null;
      this.#compiled[position] = known;
    }
    return known;
  }

  #takeSetId(): string {
    const reused = this.#freeSetIds.pop();
    if (reused !== undefined) return reused;
    const setId = `${this.#setIdPrefix}-slice-${this.#nextSetId++}`;
    this.liveSetIds.add(setId);
    return setId;
  }

  #preparseSet(setId: string, staticPolicies: Readonly<Record<string, string>>): void {
    const answer = cedar.preparsePolicySet(setId, { staticPolicies });
    if (answer.type !== "success") {
      throw new Error(answer.errors.map((error) => error.message).join("; "));
    }
  }

  /** Frees the least recently used slices beyond the limits (never one of `keep`, the parts in use). */
  #evict(keep: readonly CachedSlice[]): void {
    for (const [name, slice] of this.#byName) {
      if (this.#byName.size <= this.#limits.slices && this.#heldPolicies <= this.#limits.policies) return;
      if (keep.includes(slice)) continue;
      this.#byName.delete(name);
      this.#heldPolicies -= slice.size;
      // A stale reference (in the scope caches) keeps only a stub: it is never used again.
      slice.positions = undefined;
      slice.texts = undefined;
      slice.shadowTexts = undefined;
      slice.program = undefined;
      slice.generation = -1;
      for (const setId of [slice.enforcedSetId, slice.fullSetId]) {
        if (!setId) continue;
        try {
          cedar.preparsePolicySet(setId, { staticPolicies: {} });
          this.#freeSetIds.push(setId);
        } catch {
          // Not emptied: never reused (a later slice must not find these policies under its id).
        }
      }
      slice.enforcedSetId = "";
      slice.fullSetId = undefined;
    }
  }
}

/** What a scope left to an evaluator needs: every entity and the whole hierarchy. */
const WHOLE_PLAN: EntityPlan = Object.freeze({ principal: "whole", resource: "whole", others: true, action: true });

/** The entities a slice's evaluation needs (see {@link EntityPlan}). */
function planOf(reads: PolicyReads, scopesDecided: boolean): EntityPlan {
  if (!scopesDecided) return WHOLE_PLAN;
  const { hierarchy } = reads;
  // Attributes read on an entity literal or a record may be read on any entity.
  const readAnywhere = reads.anywhere.size > 0 || reads.tags;
  const role = (attributes: ReadonlySet<string>, inQuestion: boolean): EntityPlan["principal"] =>
    inQuestion || hierarchy.any ? "whole" : attributes.size > 0 || readAnywhere ? "without-parents" : "omit";
  return {
    principal: role(reads.principal, hierarchy.principal),
    resource: role(reads.resource, hierarchy.resource),
    // Ancestors may come through the other entities' parents (groups in groups, an action entity
    // the request brings along).
    others: readAnywhere || hierarchy.any || hierarchy.principal || hierarchy.resource || hierarchy.action,
    action: hierarchy.action || hierarchy.any,
  };
}

/**
 * What decides a request's slice, as one string: its principal, action and resource, and each
 * one's ancestors in the request's hierarchy (sorted). Two requests with the same key have the
 * same applicable policies. A principal no policy's scope names stands by its type: every new
 * workload of the same groups then shares one key, and one slice lookup.
 */
function scopeKeyOf(request: CedarRequest, hierarchy: Hierarchy, index: PolicyIndex): string {
  // References are JSON-quoted: neither a tab nor a newline can occur in one, and a bare type
  // (which holds no quote) is never a reference.
  const section = (uid: { type: string; id: string }, unnamed = false): string => {
    const ref = entityRef(uid.type, uid.id);
    return `${unnamed ? uid.type : ref}\n${[...ancestorsOf(ref, hierarchy)].sort().join("\n")}`;
  };
  const principal = request.principal;
  const unnamed = !index.namesPrincipal(entityRef(principal.type, principal.id));
  return `${section(principal, unnamed)}\t${section(request.action)}\t${section(request.resource)}`;
}
