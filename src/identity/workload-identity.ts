/**
 * The workload identity: who a governed call acts as. One per agent or service, never a shared role.
 * @module
 */
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { describeZodError, parseOwnProperties } from "../validation.js";

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
    .refine((s) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(s), `${what} must not contain control characters`)
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
  // Own properties only: an inherited `groups` (a template object, a polluted Object.prototype)
  // must never make an identity a member of anything.
  const parsed = parseOwnProperties(workloadIdentitySchema, identity);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid workload identity: ${describeZodError(parsed.error, "", workloadIdentitySchema)}`);
  }
  const { id, groups, environment, owner, attributes } = parsed.data;
  const frozen: WorkloadIdentity = Object.freeze({
    id,
    ...(groups && { groups: Object.freeze([...new Set(groups)]) }),
    ...(environment !== undefined && { environment }),
    ...(owner !== undefined && { owner }),
    ...(attributes && { attributes: Object.freeze({ ...attributes }) }),
  });
  sealed.add(frozen);
  return frozen;
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
  const own = Array.isArray(value) ? Array.from({ length: value.length }, (_, i) => String(i)) : Object.keys(value);
  return `${Array.isArray(value) ? "[" : "{"}${own.map((key) => `${JSON.stringify(key)}:${fingerprintOf(Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined, depth + 1)}`).join(",")}}`;
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
