/**
 * The workload identity: who a governed call acts as. One per agent or service, never a shared role.
 * @module
 */
import { types } from "node:util";
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { CONTROL_CHARACTERS, describeZodError, isCleanText, parseOwnProperties } from "../validation.js";

/**
 * A workload identity: the principal of every Cedar decision and the name every span and
 * record carries.
 *
 * @example
 * ```ts
 * const invoiceAgent: WorkloadIdentity = {
 *   id: "spiffe://acme.example/agents/invoice",
 *   groups: ["billing"],
 *   environment: "production",
 *   owner: "team-billing",
 *   attributes: { tier: "internal" },
 * };
 * ```
 */
export interface WorkloadIdentity {
  /** A stable, unique id: a SPIFFE id, an OIDC subject, a service name. Becomes `Bedrock::Workload::"<id>"`. */
  readonly id: string;
  /** The groups it belongs to. Each becomes a `Bedrock::Group` parent of the principal. */
  readonly groups?: readonly string[];
  /** The environment this identity was issued for (`principal.environment`). */
  readonly environment?: string;
  /** Who is accountable for it (`principal.owner`). */
  readonly owner?: string;
  /** Free-form string attributes, readable in policies as tags: `principal.getTag("tier")`. */
  readonly attributes?: Readonly<Record<string, string>>;
}

const text = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(max, `${what} must be at most ${max} characters`)
    // Control characters would corrupt logs and invocation-log attribution.
    .refine((s) => !CONTROL_CHARACTERS.test(s), `${what} must not contain control characters`)
    .refine((s) => s.isWellFormed(), `${what} must be well-formed Unicode (no lone surrogates)`);

const workloadIdentitySchema = z
  .object({
    id: text("identity.id", 512),
    groups: z.array(text("each identity group", 256)).max(64, "identity.groups may list at most 64 groups").optional(),
    environment: text("identity.environment", 128).optional(),
    owner: text("identity.owner", 256).optional(),
    attributes: z
      .record(text("an identity attribute name", 128), z.string({ error: "identity attribute values must be strings" }).max(1024))
      .refine((r) => Object.keys(r).length <= 64, "identity.attributes may have at most 64 entries")
      .optional(),
  })
  .strict();

/**
 * Checks an identity and returns a frozen copy of it, so that nothing done to the caller's object
 * later changes who a call acts as.
 *
 * @throws {@link ConfigurationError} naming the field and what to change.
 * @example
 * ```ts
 * const agent = workloadIdentity({ id: "spiffe://acme.example/agents/invoice", groups: ["billing"] });
 * ```
 */
export function workloadIdentity(identity: WorkloadIdentity): WorkloadIdentity {
  const frozen = plainIdentity(identity) ?? identityBySchema(identity);
  sealed.add(frozen);
  return frozen;
}

/** @internal The frozen copy of an identity checked by the schema, which names what is wrong. */
export function identityBySchema(identity: unknown): WorkloadIdentity {
  // Own properties only: an inherited `groups` (a template object, a polluted Object.prototype)
  // must never make an identity a member of anything.
  const parsed = parseOwnProperties(workloadIdentitySchema, identity);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid workload identity: ${describeZodError(parsed.error, "", workloadIdentitySchema)}`);
  }
  return frozenIdentity(parsed.data);
}

function frozenIdentity({ id, groups, environment, owner, attributes }: WorkloadIdentity): WorkloadIdentity {
  return Object.freeze({
    id,
    ...(groups && { groups: Object.freeze([...new Set(groups)]) }),
    ...(environment !== undefined && { environment }),
    ...(owner !== undefined && { owner }),
    ...(attributes && { attributes: Object.freeze({ ...attributes }) }),
  });
}


/**
 * @internal What {@link identityBySchema} returns, for an identity of plain data the schema
 * accepts, checked by hand (a new identity on every call spent ~6 µs in the schema); undefined for
 * anything else (an unknown key, a value of another type or length, an attribute name `Object`
 * itself has, a symbol key, a proxy), which the schema then checks and names. Each value is read
 * once and the copy is what is checked and kept: a getter cannot answer one thing to the check and
 * another to the copy.
 */
export function plainIdentity(identity: unknown): WorkloadIdentity | undefined {
  if (typeof identity !== "object" || identity === null || Array.isArray(identity) || types.isProxy(identity)) return undefined;
  let id: string | undefined;
  let groups: string[] | undefined;
  let environment: string | undefined;
  let owner: string | undefined;
  let attributes: Record<string, string> | undefined;
  for (const key of Object.keys(identity)) {
    const value: unknown = (identity as Record<string, unknown>)[key];
    if (key === "id") {
      if (!isCleanText(value, 512)) return undefined;
      id = value;
    } else if (value === undefined) {
      if (key !== "groups" && key !== "environment" && key !== "owner" && key !== "attributes") return undefined;
    } else if (key === "groups") {
      if (!Array.isArray(value) || types.isProxy(value)) return undefined;
      const length = value.length;
      if (length > 64) return undefined;
      groups = [];
      for (let i = 0; i < length; i++) {
        const group: unknown = Object.hasOwn(value, i) ? value[i] : undefined;
        if (!isCleanText(group, 256)) return undefined;
        groups.push(group);
      }
    } else if (key === "environment") {
      if (!isCleanText(value, 128)) return undefined;
      environment = value;
    } else if (key === "owner") {
      if (!isCleanText(value, 256)) return undefined;
      owner = value;
    } else if (key === "attributes") {
      const prototype: unknown = typeof value === "object" && !Array.isArray(value) && !types.isProxy(value) ? Object.getPrototypeOf(value) : undefined;
      if ((prototype !== Object.prototype && prototype !== null) || Object.getOwnPropertySymbols(value as object).length > 0) return undefined;
      const names = Object.keys(value as object);
      if (names.length > 64) return undefined;
      attributes = {};
      for (const name of names) {
        const attribute: unknown = (value as Record<string, unknown>)[name];
        if (!isCleanText(name, 128) || name in Object.prototype || typeof attribute !== "string" || attribute.length > 1024) return undefined;
        attributes[name] = attribute;
      }
    } else {
      return undefined;
    }
  }
  if (id === undefined) return undefined;
  return frozenIdentity({ id, groups, environment, owner, attributes });
}

/** Identities this module produced: validated and deeply frozen, so they never need checking again. */
const sealed = new WeakSet<WorkloadIdentity>();
const checked = new WeakMap<WorkloadIdentity, { readonly fingerprint: string; readonly frozen: WorkloadIdentity }>();
/** Identities deeply frozen by their owner: they cannot change, so they are validated once for good. */
const immutable = new WeakMap<WorkloadIdentity, WorkloadIdentity>();

/**
 * The validated, frozen form of an identity, for the call path. An identity from
 * {@link workloadIdentity} is used as is; any other object is validated once and then compared by
 * content at every use, so that changing it (another id, a removed group) takes effect at the next
 * `runAs` instead of leaving calls acting as who it used to be.
 */
export function checkedIdentity(identity: WorkloadIdentity): WorkloadIdentity {
  if (sealed.has(identity)) return identity;
  const validated = immutable.get(identity);
  if (validated !== undefined) return validated;
  let fingerprint: string;
  try {
    fingerprint = fingerprintOf(identity);
  } catch (error) {
    throw new ConfigurationError(`Invalid workload identity: it cannot be read (${(error as Error).message})`, { cause: error });
  }
  const known = checked.get(identity);
  if (known?.fingerprint === fingerprint) return known.frozen;
  const frozen = workloadIdentity(identity);
  if (isDeeplyFrozen(identity, 0)) immutable.set(identity, frozen);
  else checked.set(identity, { fingerprint, frozen });
  return frozen;
}

/**
 * The identity's own data as one string, to notice a change. Not `JSON.stringify`: it would call a
 * `toJSON` (the identity's own, or one planted on a prototype) that can answer the same whatever
 * the identity holds.
 */
function fingerprintOf(value: unknown, depth = 0): string {
  if (depth > 8) throw new TypeError("it is nested too deeply");
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value !== "object" || value === null) return typeof value === "function" || typeof value === "symbol" ? typeof value : String(value);
  // Loops, not map and join: a new identity object on every call is the common case.
  const list = Array.isArray(value);
  const own = list ? undefined : Object.keys(value);
  const length = list ? value.length : (own as string[]).length;
  let fingerprint = list ? "[" : "{";
  for (let i = 0; i < length; i++) {
    const key = list ? String(i) : (own as string[])[i] as string;
    const item = Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
    fingerprint += `${i === 0 ? "" : ","}${JSON.stringify(key)}:${fingerprintOf(item, depth + 1)}`;
  }
  return `${fingerprint}}`;
}

function isDeeplyFrozen(value: unknown, depth: number): boolean {
  if (typeof value !== "object" || value === null) return true;
  // Getters could answer differently each time: only plain data counts.
  if (depth > 8 || !Object.isFrozen(value)) return false;
  for (const descriptor of Object.values(Object.getOwnPropertyDescriptors(value))) {
    if (!("value" in descriptor) || !isDeeplyFrozen(descriptor.value, depth + 1)) return false;
  }
  return true;
}
