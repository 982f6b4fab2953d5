/**
 * `createGovernance(options)`: the policy engine, the environment, and where the evidence goes,
 * checked once at start-up and shared by every governed client.
 * @module
 */
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import { trace } from "@opentelemetry/api";
import { z } from "zod";
import type { DecisionListener, DecisionRecord } from "./audit/decision-record.js";
import type { DecisionSink } from "./audit/sink.js";
import { ISSUE, type CredentialBroker } from "./credentials/credential-broker.js";
import { ConfigurationError } from "./errors.js";
import { CedarEngine, type PolicyEvaluator } from "./policy/cedar-engine.js";
import { shippedSchema } from "./policy/schema.js";
import { policiesFromText, type PolicyDocument } from "./policy/sources.js";
import { GovernanceMetrics } from "./telemetry/metrics.js";
import { TRACER_NAME } from "./telemetry/semconv.js";
import { ToolCallRegistry } from "./tools/tool-call-registry.js";
import { declareTools, schemaWithTools, type DeclaredTool, type ToolDefinition } from "./tools/tool-definitions.js";
import { CONTROL_CHARACTERS, describeZodError, ownProperties, ownValue, parseOwnProperties } from "./validation.js";
import { usageOptionsSchema, type UsageOptions } from "./budgets/usage-context.js";
import { VERSION } from "./version.js";

/**
 * Options of {@link createGovernance}.
 *
 * @example
 * ```ts
 * const options: GovernanceOptions = {
 *   environment: "production",
 *   policies: policiesFromDirectory("./policies"),
 *   onDecision: (record) => console.log(JSON.stringify(record)),
 * };
 * ```
 */
export interface GovernanceOptions {
  /**
   * The deployment environment the governed clients run in (`context.environment`), e.g.
   * `"production"`. Required: a security decision should never guess where it runs.
   */
  readonly environment: string;
  /** The policies: Cedar text, or documents from `policiesFromText/File/Directory`. */
  readonly policies: string | readonly PolicyDocument[];
  /** Where spans go; the globally registered provider by default. */
  readonly tracerProvider?: TracerProvider;
  /** Where metrics go (decisions, token usage, durations); the globally registered provider by default. */
  readonly meterProvider?: MeterProvider;
  /**
   * Record prompts, responses and tool arguments on spans (`gen_ai.input.messages`, ...).
   * Off by default: content often holds exactly the data the policies protect.
   */
  readonly captureContent?: boolean;
  /**
   * Receives one decision record per governed call and per tool decision, when it ends: a
   * best-effort listener (a throw is reported as a process warning and changes nothing). For
   * evidence that must not be lost, use `sinks`.
   */
  readonly onDecision?: DecisionListener;
  /**
   * Where decision records go, as evidence: e.g. `createJsonlSink({ path })` (an append-only,
   * hash-chained JSON Lines file), `otelLogsSink()`, `callbackSink(fn)`. Each gets every record.
   */
  readonly sinks?: readonly DecisionSink[];
  /**
   * What a failing sink (a full disk, an unwritable file, a listener that throws) does to calls:
   * `"deny"` (default: fail closed — calls are denied with `EvidenceUnavailableError` until the
   * sink recovers, since a call whose evidence cannot be kept is not made) or `"continue"`.
   */
  readonly onSinkFailure?: "deny" | "continue";
  /**
   * How many decisions to memoize (default 10,000; 0 turns memoization off). An identical request
   * under the same policy set gets the same decision without evaluating again: exact, bounded (by
   * this count, and to ~4 million characters of keys, whatever the requests hold), and emptied
   * with every new policy set.
   */
  readonly decisionCacheSize?: number;
  /**
   * Which evaluator decides a request the memo cannot answer: `"javascript"` (default) decides in
   * JavaScript the requests whose policies and values are all in the part of Cedar it evaluates
   * exactly as Cedar does (no extension functions but `decimal` and its comparisons, nothing Cedar
   * would answer with an error), and hands every other evaluation to cedar-wasm; `"wasm"` evaluates
   * every request in cedar-wasm.
   */
  readonly evaluator?: PolicyEvaluator;
  /**
   * The tools the application's models may be offered and may call, each with its effect,
   * sensitivity, owner and input schema. Each becomes the Cedar action `tool:<name>`; a tool that
   * is not declared is decided as `UndeclaredTool` and counts as mutating.
   */
  readonly tools?: readonly ToolDefinition[];
  /**
   * What to do with tools in `toolConfig` that the workload may not use: `"filter"` (default)
   * removes them from the request, so the model never sees them; `"deny"` denies the whole call.
   */
  readonly toolFiltering?: "filter" | "deny";
  /**
   * What a denied tool call the model asks for does: `"throw"` (default) makes `send()` (or the
   * stream, at that event) throw `ToolCallDeniedError`; `"result"` lets the call return, and
   * `deniedToolResults(output)` gives the `toolResult` blocks (status error) to send back to the
   * model, so the conversation goes on.
   */
  readonly toolEnforcement?: "throw" | "result";
  /**
   * Signs every governed call with just-in-time credentials issued for its own identity and
   * invocation path (see `createCredentialBroker`), instead of the client's own credentials.
   */
  readonly credentialBroker?: CredentialBroker;
  /**
   * `"enforce"` (default) or `"shadow"`: in shadow, every decision is made and recorded but none
   * blocks — a call the policies would deny goes on, and its span and record carry the would-be
   * decision (`decision.shadow`). For rolling a policy set out. To trial single policies instead,
   * annotate them `@shadow`. The checks that are not policy decisions (no identity, an unknown
   * command, an unreadable input, no credentials) are enforced in both modes.
   */
  readonly enforcement?: "enforce" | "shadow";
  /**
   * Counts each workload's calls (per minute) and tokens (per hour) in a usage store, for policies
   * to read as `context.usage`, and enforces the store's kill switch. `memoryUsageStore()` for one
   * process, `redisUsageStore({ url })` for a fleet. `onStoreError`: `"deny"` (default) or
   * `"allow-without-usage"`.
   */
  readonly usage?: UsageOptions;
}

const policiesSchema = z.union(
  [
    z.string(),
    z.array(z.object({ source: z.string(), text: z.string() }).strict(), {
      error: "must be Cedar policy text or an array of { source, text } (see policiesFromDirectory)",
    }),
  ],
  { error: "must be Cedar policy text or the result of policiesFromText / policiesFromFile / policiesFromDirectory" },
);

const optionsSchema = z
  .object({
    environment: z
      .string({ error: 'is required: the environment the clients run in, e.g. "production"' })
      .min(1, 'must not be empty: e.g. "production"')
      .max(128, "must be at most 128 characters")
      // It is in every decision's context, span and record: as clean as an identity's environment.
      .refine((s) => !CONTROL_CHARACTERS.test(s), "must not contain control characters")
      .refine((s) => s.isWellFormed(), "must be well-formed Unicode (no lone surrogates)"),
    policies: policiesSchema,
    tracerProvider: z.custom<TracerProvider>((v) => typeof (v as TracerProvider | undefined)?.getTracer === "function", {
      message: "must be an OpenTelemetry TracerProvider (an object with getTracer)",
    }).optional(),
    meterProvider: z
      .custom<MeterProvider>((v) => typeof (v as MeterProvider | undefined)?.getMeter === "function", {
        message: "must be an OpenTelemetry MeterProvider (an object with getMeter)",
      })
      .optional(),
    captureContent: z.boolean({ error: "must be true or false" }).optional(),
    onDecision: z.custom<DecisionListener>((v) => typeof v === "function", { message: "must be a function (record) => void" }).optional(),
    sinks: z
      .array(
        z.custom<DecisionSink>(
          (v) => ["write", "flush", "close"].every((m) => typeof (v as Record<string, unknown> | null)?.[m] === "function") && typeof (v as { name?: unknown }).name === "string",
          { message: "each sink must be a DecisionSink ({ name, write, flush, close, failure }): createJsonlSink(), otelLogsSink() or callbackSink()" },
        ),
        { error: "must be an array of decision sinks" },
      )
      .optional(),
    onSinkFailure: z.enum(["deny", "continue"], { error: 'must be "deny" or "continue"' }).optional(),
    tools: z.array(z.unknown(), { error: "must be an array of tool definitions ({ name, effect, ... })" }).optional(),
    toolFiltering: z.enum(["filter", "deny"], { error: 'must be "filter" or "deny"' }).optional(),
    toolEnforcement: z.enum(["throw", "result"], { error: 'must be "throw" or "result"' }).optional(),
    enforcement: z.enum(["enforce", "shadow"], { error: 'must be "enforce" or "shadow"' }).optional(),
    credentialBroker: z
      .custom<CredentialBroker>((v) => typeof (v as CredentialBroker | undefined)?.[ISSUE] === "function", {
        message: "must be a credential broker from createCredentialBroker()",
      })
      .optional(),
    usage: usageOptionsSchema.optional(),
    decisionCacheSize: z
      .number({ error: "must be a number of decisions (0 turns memoization off)" })
      .int("must be a whole number")
      .min(0, "must be 0 or more")
      .max(1_000_000, "must be at most 1,000,000")
      .optional(),
    evaluator: z.enum(["javascript", "wasm"], { error: 'must be "javascript" or "wasm"' }).optional(),
  })
  .strict();

/**
 * The governance shared by governed clients: build it once with {@link createGovernance}.
 *
 * @example
 * ```ts
 * const governance: Governance = createGovernance({ environment: "production", policies: policiesFromDirectory("./policies") });
 * console.log(governance.policySetVersion, governance.engine.policies.size);
 * ```
 */
export interface Governance {
  /** The environment every decision's context carries. */
  readonly environment: string;
  /** The policy set deciding now (a reload replaces it; each decision names the version it used). */
  readonly engine: CedarEngine;
  /** The content hash of the current policy set and schema. */
  readonly policySetVersion: string;
  /**
   * Replaces the policy set (and, optionally, the schema — e.g. one synced from Amazon Verified
   * Permissions). The new set is loaded, validated and preparsed in full first: when it is broken
   * this throws (a {@link PolicyLoadError} with file:line problems) and the current set keeps
   * deciding — a broken edit never opens or closes everything. Returns the new set's version.
   *
   * @example
   * ```ts
   * try {
   *   const version = governance.reload(policiesFromDirectory("./policies"));
   *   console.log(`policies reloaded: ${version}`);
   * } catch (error) {
   *   console.error(`kept ${governance.policySetVersion}: ${(error as Error).message}`);
   * }
   * ```
   */
  reload(policies: string | readonly PolicyDocument[], options?: { readonly schema?: string }): string;
  readonly captureContent: boolean;
  /** @internal */
  readonly tracer: import("@opentelemetry/api").Tracer;
  /** @internal The decision, token and duration instruments. */
  readonly metrics: GovernanceMetrics;
  /** The declared tools, by name. */
  readonly tools: ReadonlyMap<string, DeclaredTool>;
  readonly toolFiltering: "filter" | "deny";
  readonly toolEnforcement: "throw" | "result";
  /** The credential broker, when calls are signed with just-in-time credentials. */
  readonly credentialBroker: CredentialBroker | undefined;
  /** The usage store and what a store failure does, when usage is counted. */
  readonly usage: Required<UsageOptions> | undefined;
  /** @internal Where each tool call the model asked for came from. */
  readonly toolCalls: ToolCallRegistry;
  /** @internal Whether anything listens for decision records (when nothing does, none is built). */
  readonly recording: boolean;
  /** The decision sinks. */
  readonly sinks: readonly DecisionSink[];
  /** @internal The first failing sink and its failure, when failing sinks deny calls (`onSinkFailure: "deny"`). */
  failingSink(): { readonly name: string; readonly failure: Error } | undefined;
  /**
   * Resolves once every sink has delivered every record written so far (e.g. before a shutdown);
   * rejects with the first sink's failure.
   *
   * @example
   * ```ts
   * process.on("SIGTERM", async () => { await governance.flush(); process.exit(0); });
   * ```
   */
  flush(): Promise<void>;
  /** @internal Delivers a record to the listener; a listener's failure never changes a call. */
  record(record: DecisionRecord): void;
}

/**
 * Loads and validates the policies against the shipped schema, preparses them and warms the
 * engine up, so that the first governed call is as fast as the next.
 *
 * @example
 * ```ts
 * import { createGovernance, policiesFromDirectory, GovernedBedrockRuntimeClient } from "bedrock-warden";
 *
 * const governance = createGovernance({ environment: "production", policies: policiesFromDirectory("./policies") });
 * const bedrock = new GovernedBedrockRuntimeClient({ region: "us-east-1", governance });
 * ```
 * @throws {@link ConfigurationError} for a malformed option (the message names it and what to change);
 * {@link PolicyLoadError} for a policy that does not parse or validate (with file, line and column).
 */
export function createGovernance(givenOptions: GovernanceOptions): Governance {
  // Own properties only, read from objects without a prototype: an inherited (or polluted) option
  // never counts, and an option left out reads as undefined, its default.
  const options = ownProperties(givenOptions);
  // The usage options too: an inherited onStoreError must not turn a store outage into an allow.
  if (typeof options === "object" && options !== null && typeof options.usage === "object" && options.usage !== null) {
    (options as { usage?: unknown }).usage = ownProperties(options.usage);
  }
  const parsed = parseOwnProperties(optionsSchema, options);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid governance options: ${describeZodError(parsed.error, "governance", optionsSchema)}`);
  }
  const data = parsed.data;
  const { environment, policies, tracerProvider, captureContent = false, onDecision, decisionCacheSize } = data;
  const sinks: readonly DecisionSink[] = Object.freeze([...(options.sinks ?? [])]);
  /** Sinks whose last write threw (which a sink must never do): failing, as if they said so. */
  const thrownOnWrite = new Map<DecisionSink, Error>();
  const onSinkFailure = data.onSinkFailure ?? "deny";
  const documents = typeof policies === "string" ? policiesFromText(policies) : policies;
  const tools = declareTools((data.tools ?? []) as ToolDefinition[]);
  const governanceMetrics = new GovernanceMetrics(data.meterProvider);
  const engineOptions = {
    ...(decisionCacheSize !== undefined && { decisionCacheSize }),
    enforcement: data.enforcement ?? "enforce",
    evaluator: data.evaluator ?? "javascript",
    ...(governanceMetrics.recording && { onEvaluation: (evaluator: PolicyEvaluator) => governanceMetrics.recordEvaluation(evaluator) }),
  };
  let engine = new CedarEngine(documents, schemaWithTools(shippedSchema(), tools), engineOptions);
  const tracer = (tracerProvider ?? trace).getTracer(TRACER_NAME, VERSION);
  return Object.freeze({
    environment,
    get engine() {
      return engine;
    },
    get policySetVersion() {
      return engine.version;
    },
    reload(next: string | readonly PolicyDocument[], reloadOptions: { schema?: string } = {}): string {
      const checked = policiesSchema.safeParse(next);
      if (!checked.success) throw new ConfigurationError(`Invalid reload: ${describeZodError(checked.error, "policies")}`);
      const nextDocuments = typeof checked.data === "string" ? policiesFromText(checked.data) : checked.data;
      // Built and validated in full before anything changes: a broken set throws here, and the
      // current set keeps deciding.
      const replacement = new CedarEngine(nextDocuments, schemaWithTools(reloadOptions.schema ?? shippedSchema(), tools), engineOptions);
      engine = replacement;
      return replacement.version;
    },
    captureContent,
    tracer,
    metrics: governanceMetrics,
    tools,
    toolFiltering: data.toolFiltering ?? "filter",
    toolEnforcement: data.toolEnforcement ?? "throw",
    credentialBroker: options.credentialBroker,
    usage: options.usage && Object.freeze({ store: options.usage.store, onStoreError: ownValue(data.usage, "onStoreError") ?? "deny" }),
    toolCalls: new ToolCallRegistry(),
    recording: onDecision !== undefined || sinks.length > 0,
    sinks,
    failingSink(): { readonly name: string; readonly failure: Error } | undefined {
      if (onSinkFailure !== "deny") return undefined;
      for (const sink of sinks) {
        let failure: Error | undefined = thrownOnWrite.get(sink);
        try {
          failure ??= sink.failure;
        } catch (error) {
          // A sink that cannot even say whether it works is failing.
          failure = error instanceof Error ? error : new Error(String(error));
        }
        if (failure !== undefined) return { name: sink.name, failure };
      }
      return undefined;
    },
    async flush(): Promise<void> {
      // Every sink gets its chance to flush, even when another fails: then the first failure is thrown.
      const results = await Promise.allSettled(sinks.map((sink) => sink.flush()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    },
    record(record: DecisionRecord): void {
      // Sinks may keep the record and serialize it later: nobody may change it from here on.
      if (sinks.length > 0) freezeRecord(record);
      if (onDecision) {
        const warn = (error: unknown) =>
          // The call has already been decided; losing the listener's failure silently would hide a broken audit trail.
          process.emitWarning(`bedrock-warden: onDecision listener threw: ${(error as Error)?.message ?? String(error)}`, "BedrockWardenWarning");
        try {
          const result: unknown = onDecision(record);
          // An async listener's rejection is reported the same way, never left unhandled (it would end the process).
          if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") Promise.resolve(result as PromiseLike<unknown>).catch(warn);
        } catch (error) {
          warn(error);
        }
      }
      for (const sink of sinks) {
        try {
          sink.write(record);
          thrownOnWrite.delete(sink);
        } catch (error) {
          // A sink must never throw (it queues and reports through `failure`); one that does has
          // lost this record, and is failing until a write succeeds again.
          const message = `decision sink ${sink.name} threw on write: ${(error as Error)?.message ?? String(error)}`;
          thrownOnWrite.set(sink, new Error(`${message}; records are being lost`, { cause: error }));
          process.emitWarning(`bedrock-warden: ${message}`, "BedrockWardenWarning");
        }
      }
    },
  });
}

/**
 * Freezes a record and everything it holds, however deep (a withheld tool's reasons are three
 * levels down), frozen parts included: an object frozen on the outside may hold one that is not.
 */
function freezeRecord(value: object, seen = new Set<object>()): void {
  if (seen.has(value)) return;
  seen.add(value);
  Object.freeze(value);
  for (const inner of Object.values(value)) if (typeof inner === "object" && inner !== null) freezeRecord(inner as object, seen);
}
