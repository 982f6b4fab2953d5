/**
 * Who a call acts as and why, carried through async code with AsyncLocalStorage: `runAs` scopes
 * nest (the innermost identity wins) and concurrent scopes never see each other.
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { CONTROL_CHARACTERS, describeZodError, parseOwnProperties } from "../validation.js";
import { checkedIdentity, type WorkloadIdentity } from "./workload-identity.js";

/**
 * What a caller declares about the calls made inside a scope. Every field reaches the Cedar
 * context, the span and the decision record.
 *
 * @example
 * ```ts
 * const scope: CallScope = { purpose: "invoice-2026-11-reconciliation", dataSensitivity: ["pii"], actionType: "read" };
 * ```
 */
export interface CallScope {
  /** The task these calls serve (`context.purpose`): the evidence says why, not only who. */
  readonly purpose?: string;
  /** Labels for the data these calls carry (`context.dataSensitivity`), e.g. `["pii", "financial"]`. Nested scopes add up. */
  readonly dataSensitivity?: readonly string[];
  /**
   * Declares the path as `"mutate"` (it can change systems, e.g. it executes tools that write).
   * A scope can only raise the action type a command implies, never lower it: `"read"` on
   * StartAsyncInvoke (which writes to S3) stays `"mutate"`.
   */
  readonly actionType?: "read" | "mutate";
}

/**
 * The resolved scope of the current async context.
 *
 * @example
 * ```ts
 * const { identity, purpose, dataSensitivity, actionType }: ActiveScope = currentScope();
 * ```
 */
export interface ActiveScope {
  readonly identity: WorkloadIdentity | undefined;
  readonly purpose: string | undefined;
  readonly dataSensitivity: readonly string[];
  readonly actionType: "read" | "mutate";
  /** The task (invocation path) these calls run in, when they run inside `runTask`. */
  readonly task: TaskScope | undefined;
}

/**
 * A running task: the invocation path its calls take (`context.task`), and the end its
 * credentials do not outlive.
 *
 * @example
 * ```ts
 * await runTask(agent, "reconcile-invoices", async () => {
 *   currentScope().task?.name; // "reconcile-invoices"
 * });
 * ```
 */
export interface TaskScope {
  readonly name: string;
  /** Whether the task has ended. */
  readonly ended: boolean;
  /** Runs `callback` when the task ends (at once when it already has). */
  onEnd(callback: () => void): void;
}

const label = z
  .string()
  .min(1, "must not be empty")
  .max(256, "must be at most 256 characters")
  .refine((s) => !CONTROL_CHARACTERS.test(s), "must not contain control characters")
  .refine((s) => s.isWellFormed(), "must be well-formed Unicode (no lone surrogates)");

const callScopeSchema = z
  .object({
    purpose: label.optional(),
    dataSensitivity: z.array(label).max(32, "may list at most 32 labels").optional(),
    actionType: z.enum(["read", "mutate"], { error: 'must be "read" or "mutate"' }).optional(),
  })
  .strict();

const storage = new AsyncLocalStorage<ActiveScope>();
const EMPTY_SCOPE: ActiveScope = Object.freeze({
  identity: undefined,
  purpose: undefined,
  dataSensitivity: Object.freeze([]) as readonly string[],
  actionType: "read",
  task: undefined,
});

/**
 * Runs `fn` as `identity`: every governed call made inside it (however deep, across awaits)
 * is authorized, attributed and recorded as this workload. The innermost `runAs` wins.
 *
 * @example
 * ```ts
 * const reply = await runAs(invoiceAgent, () => bedrock.send(new ConverseCommand(input)), {
 *   purpose: "reconcile invoice 4711",
 *   dataSensitivity: ["financial"],
 * });
 * ```
 * @throws {@link ConfigurationError} when the identity or the scope is malformed (before `fn` runs).
 */
export function runAs<T>(identity: WorkloadIdentity, fn: () => T, scope?: CallScope): T {
  const checked = checkedIdentity(identity);
  return storage.run(nest(currentScope(), checked, scope), fn);
}

/**
 * Adds purpose, data-sensitivity labels or a mutating action type to the calls made inside `fn`,
 * keeping the current identity.
 *
 * @example
 * ```ts
 * await withCallScope({ dataSensitivity: ["phi"] }, () => bedrock.converse(input));
 * ```
 */
export function withCallScope<T>(scope: CallScope, fn: () => T): T {
  const current = currentScope();
  return storage.run(nest(current, current.identity, scope), fn);
}

/**
 * The scope of the current async context: the identity `runAs` set (if any) and the declared
 * purpose, labels and action type.
 *
 * @example
 * ```ts
 * runAs(agent, () => currentScope().identity?.id); // "spiffe://acme.example/agents/invoice"
 * ```
 */
export function currentScope(): ActiveScope {
  return storage.getStore() ?? EMPTY_SCOPE;
}

/** @internal Runs `fn` in a scope with `identity`, the declared `scope` and the running `task`. */
export function runInScope<T>(identity: WorkloadIdentity, task: TaskScope, fn: () => T, scope?: CallScope): T {
  return storage.run({ ...nest(currentScope(), checkedIdentity(identity), scope), task }, fn);
}

// runAs(identity, fn) outside any scope, the common case: one frozen scope per identity, not a new object per call.
const outermost = new WeakMap<WorkloadIdentity, ActiveScope>();

function nest(outer: ActiveScope, identity: WorkloadIdentity | undefined, scope: CallScope | undefined): ActiveScope {
  if (scope === undefined) {
    if (identity === outer.identity) return outer;
    if (outer !== EMPTY_SCOPE || identity === undefined) return { ...outer, identity };
    let nested = outermost.get(identity);
    if (nested === undefined) outermost.set(identity, (nested = Object.freeze({ ...EMPTY_SCOPE, identity })));
    return nested;
  }
  // Own properties only: a polluted Object.prototype.purpose must not become a call's purpose.
  const parsed = parseOwnProperties(callScopeSchema, scope);
  if (!parsed.success) throw new ConfigurationError(`Invalid call scope: ${describeZodError(parsed.error, "scope", callScopeSchema)}`);
  const { purpose, dataSensitivity, actionType } = parsed.data;
  return Object.freeze({
    identity,
    purpose: purpose ?? outer.purpose,
    dataSensitivity: dataSensitivity
      ? Object.freeze([...new Set([...outer.dataSensitivity, ...dataSensitivity])])
      : outer.dataSensitivity,
    actionType: outer.actionType === "mutate" || actionType === "mutate" ? "mutate" : "read",
    task: outer.task,
  });
}
