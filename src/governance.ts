/**
 * `createGovernance(options)`: the policy engine, the environment, and where the evidence goes,
 * checked once at start-up and shared by every governed client.
 * @module
 */
import type { TracerProvider } from "@opentelemetry/api";
import { trace } from "@opentelemetry/api";
import { z } from "zod";
import type { DecisionListener, DecisionRecord } from "./audit/decision-record.js";
import { ISSUE, type CredentialBroker } from "./credentials/credential-broker.js";
import { ConfigurationError } from "./errors.js";
import { CedarEngine } from "./policy/cedar-engine.js";
import { shippedSchema } from "./policy/schema.js";
import { policiesFromText, type PolicyDocument } from "./policy/sources.js";
import { TRACER_NAME } from "./telemetry/semconv.js";
import { ToolCallRegistry } from "./tools/tool-call-registry.js";
import { declareTools, schemaWithTools, type DeclaredTool, type ToolDefinition } from "./tools/tool-definitions.js";
import { describeZodError } from "./validation.js";
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
  /**
   * Record prompts, responses and tool arguments on spans (`gen_ai.input.messages`, ...).
   * Off by default: content often holds exactly the data the policies protect.
   */
  readonly captureContent?: boolean;
  /** Receives one decision record per governed call, when the call ends. */
  readonly onDecision?: DecisionListener;
  /**
   * How many decisions to memoize (default 10,000; 0 turns memoization off). An identical request
   * under the same policy set gets the same decision without evaluating again: exact, bounded, and
   * emptied with every new policy set.
   */
  readonly decisionCacheSize?: number;
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
}

const optionsSchema = z
  .object({
    environment: z
      .string({ error: 'is required: the environment the clients run in, e.g. "production"' })
      .min(1, 'must not be empty: e.g. "production"')
      .max(128, "must be at most 128 characters"),
    policies: z.union(
      [
        z.string(),
        z.array(z.object({ source: z.string(), text: z.string() }).strict(), {
          error: "must be Cedar policy text or an array of { source, text } (see policiesFromDirectory)",
        }),
      ],
      { error: "must be Cedar policy text or the result of policiesFromText / policiesFromFile / policiesFromDirectory" },
    ),
    tracerProvider: z.custom<TracerProvider>((v) => typeof (v as TracerProvider | undefined)?.getTracer === "function", {
      message: "must be an OpenTelemetry TracerProvider (an object with getTracer)",
    }).optional(),
    captureContent: z.boolean({ error: "must be true or false" }).optional(),
    onDecision: z.custom<DecisionListener>((v) => typeof v === "function", { message: "must be a function (record) => void" }).optional(),
    tools: z.array(z.unknown(), { error: "must be an array of tool definitions ({ name, effect, ... })" }).optional(),
    toolFiltering: z.enum(["filter", "deny"], { error: 'must be "filter" or "deny"' }).optional(),
    toolEnforcement: z.enum(["throw", "result"], { error: 'must be "throw" or "result"' }).optional(),
    credentialBroker: z
      .custom<CredentialBroker>((v) => typeof (v as CredentialBroker | undefined)?.[ISSUE] === "function", {
        message: "must be a credential broker from createCredentialBroker()",
      })
      .optional(),
    decisionCacheSize: z
      .number({ error: "must be a number of decisions (0 turns memoization off)" })
      .int("must be a whole number")
      .min(0, "must be 0 or more")
      .max(1_000_000, "must be at most 1,000,000")
      .optional(),
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
  /** The loaded policy set. */
  readonly engine: CedarEngine;
  /** The content hash of the policy set and schema. */
  readonly policySetVersion: string;
  readonly captureContent: boolean;
  /** @internal */
  readonly tracer: import("@opentelemetry/api").Tracer;
  /** The declared tools, by name. */
  readonly tools: ReadonlyMap<string, DeclaredTool>;
  readonly toolFiltering: "filter" | "deny";
  readonly toolEnforcement: "throw" | "result";
  /** The credential broker, when calls are signed with just-in-time credentials. */
  readonly credentialBroker: CredentialBroker | undefined;
  /** @internal Where each tool call the model asked for came from. */
  readonly toolCalls: ToolCallRegistry;
  /** @internal Whether anything listens for decision records (when nothing does, none is built). */
  readonly recording: boolean;
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
export function createGovernance(options: GovernanceOptions): Governance {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid governance options: ${describeZodError(parsed.error, "governance", optionsSchema)}`);
  }
  const { environment, policies, tracerProvider, captureContent = false, onDecision, decisionCacheSize } = parsed.data;
  const documents = typeof policies === "string" ? policiesFromText(policies) : policies;
  const tools = declareTools((parsed.data.tools ?? []) as ToolDefinition[]);
  const engine = new CedarEngine(documents, schemaWithTools(shippedSchema(), tools), decisionCacheSize === undefined ? {} : { decisionCacheSize });
  const tracer = (tracerProvider ?? trace).getTracer(TRACER_NAME, VERSION);
  return Object.freeze({
    environment,
    engine,
    policySetVersion: engine.version,
    captureContent,
    tracer,
    tools,
    toolFiltering: parsed.data.toolFiltering ?? "filter",
    toolEnforcement: parsed.data.toolEnforcement ?? "throw",
    credentialBroker: options.credentialBroker,
    toolCalls: new ToolCallRegistry(),
    recording: onDecision !== undefined,
    record(record: DecisionRecord): void {
      if (!onDecision) return;
      try {
        onDecision(record);
      } catch (error) {
        // The call has already been decided; losing the listener's exception silently would hide a broken audit trail.
        process.emitWarning(`bedrock-warden: onDecision listener threw: ${(error as Error)?.message ?? String(error)}`, "BedrockWardenWarning");
      }
    },
  });
}
