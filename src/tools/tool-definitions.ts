/**
 * The tools an application declares: what each one does (its effect), how sensitive it is, who
 * owns it, and the JSON Schema of its input. Each declared tool becomes a Cedar action
 * `Bedrock::Action::"tool:<name>"` (in the `ToolUse` group) whose context carries the tool's input,
 * typed from its schema, so that policies can test input fields and are validated against them.
 * @module
 */
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { wasm as cedar } from "../policy/cedar-wasm.js";
import type * as cedarTypes from "../policy/cedar-wasm.js";
import { CONTROL_CHARACTERS, describeZodError, parseOwnProperties } from "../validation.js";
import { jsonSchemaToCedarType, type CedarRecordType } from "./json-schema-to-cedar.js";

/**
 * A tool, as the application declares it to its governance.
 *
 * @example
 * ```ts
 * const refund: ToolDefinition = {
 *   name: "issue_refund",
 *   effect: "mutate",
 *   sensitivity: "financial",
 *   owner: "team-billing",
 *   inputSchema: { type: "object", properties: { invoiceId: { type: "string" }, amount: { type: "number" } }, required: ["invoiceId", "amount"] },
 * };
 * ```
 */
export interface ToolDefinition {
  /** The name the model sees and calls (`toolSpec.name`): 1-64 characters of `[a-zA-Z0-9_-]`. */
  readonly name: string;
  /** `"read"` when running it only reads; `"mutate"` when it can change anything. */
  readonly effect: "read" | "mutate";
  /** The most sensitive data it touches (`resource.sensitivity`), e.g. `"pii"`. */
  readonly sensitivity?: string;
  /** Who is accountable for it (`resource.owner`). */
  readonly owner?: string;
  /** The JSON Schema of its input (`toolSpec.inputSchema.json`): its fields become `context.input`. */
  readonly inputSchema?: unknown;
  /** An AWS-run `systemTool` (e.g. a web grounding tool), not run by the application. */
  readonly serverSide?: boolean;
}

/** A declared tool, ready for decisions. */
export interface DeclaredTool {
  readonly definition: ToolDefinition;
  /** Its Cedar action id: `tool:<name>`. */
  readonly action: string;
  /** The Cedar type of its input, when it has an input schema. */
  readonly inputType?: CedarRecordType;
  /** Whether policies see all of its input (a schema was given and every part of it could be mapped). */
  readonly inputFullyTyped: boolean;
  /** What of its input schema could not be mapped (those fields are never shown to policies). */
  readonly inputProblems: readonly string[];
}

/** The Cedar action of tools the application did not declare. */
export const UNDECLARED_TOOL_ACTION = "UndeclaredTool";

const label = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(max, `${what} must be at most ${max} characters`)
    .refine((s) => !CONTROL_CHARACTERS.test(s) && s.isWellFormed(), `${what} must not contain control characters`);

const toolDefinitionSchema = z
  .object({
    name: z
      .string({ error: "tool.name must be a string" })
      .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'tool.name must be 1-64 characters of letters, digits, "_" and "-" (as Bedrock requires)'),
    effect: z.enum(["read", "mutate"], { error: 'tool.effect must be "read" or "mutate"' }),
    sensitivity: label("tool.sensitivity", 128).optional(),
    owner: label("tool.owner", 256).optional(),
    inputSchema: z.unknown().optional(),
    serverSide: z.boolean({ error: "tool.serverSide must be true or false" }).optional(),
  })
  .strict();

/**
 * Checks the declarations and derives each tool's input type.
 *
 * @throws {@link ConfigurationError} naming the tool and what to change.
 */
export function declareTools(tools: readonly ToolDefinition[]): ReadonlyMap<string, DeclaredTool> {
  if (!Array.isArray(tools)) throw new ConfigurationError("governance.tools must be an array of tool definitions");
  const declared = new Map<string, DeclaredTool>();
  tools.forEach((tool, index) => {
    // Own properties only: a polluted Object.prototype.serverSide must not describe a tool.
    const parsed = parseOwnProperties(toolDefinitionSchema, tool);
    if (!parsed.success) throw new ConfigurationError(`Invalid governance.tools[${index}]: ${describeZodError(parsed.error, "", toolDefinitionSchema)}`);
    const definition = Object.freeze({ sensitivity: undefined, owner: undefined, inputSchema: undefined, serverSide: undefined, ...parsed.data }) as ToolDefinition;
    if (declared.has(definition.name)) throw new ConfigurationError(`governance.tools declares "${definition.name}" twice: declare each tool once`);
    let inputType: CedarRecordType | undefined;
    let inputProblems: readonly string[] = [];
    if (definition.inputSchema !== undefined) {
      const derived = jsonSchemaToCedarType(definition.inputSchema);
      if (derived.type.type !== "Record") {
        throw new ConfigurationError(`governance.tools "${definition.name}": inputSchema must describe an object (type: "object" with properties)`);
      }
      inputType = derived.type;
      inputProblems = Object.freeze([...derived.problems]);
    }
    declared.set(
      definition.name,
      Object.freeze({
        definition,
        action: `tool:${definition.name}`,
        ...(inputType && { inputType }),
        inputFullyTyped: inputType !== undefined && inputProblems.length === 0,
        inputProblems,
      }),
    );
  });
  return declared;
}

/**
 * The shipped schema extended with one action per declared tool, in Cedar's JSON schema format:
 * `action "tool:<name>" in [ToolUse] appliesTo { principal: Workload, resource: Tool,
 * context: ToolContext + { "input"?: <the input's type> } }`.
 */
export function schemaWithTools(schemaText: string, tools: ReadonlyMap<string, DeclaredTool>): string | cedarTypes.SchemaJson<string> {
  if (tools.size === 0) return schemaText;
  const json = cedar.schemaToJson(schemaText);
  if (json.type !== "success") throw new ConfigurationError(`The schema does not parse: ${json.errors.map((e) => e.message).join("; ")}`);
  const namespace = json.json["Bedrock"];
  const toolContext = namespace?.commonTypes?.["ToolContext"] as { type: "Record"; attributes: Record<string, unknown> } | undefined;
  if (!namespace || toolContext?.type !== "Record") throw new ConfigurationError("The schema has no Bedrock::ToolContext record type");
  for (const tool of tools.values()) {
    const attributes: Record<string, unknown> = { ...toolContext.attributes };
    if (tool.inputType) attributes["input"] = { ...tool.inputType, required: false };
    namespace.actions[tool.action] = {
      memberOf: [{ id: "ToolUse" }],
      appliesTo: { principalTypes: ["Workload"], resourceTypes: ["Tool"], context: { type: "Record", attributes } as never },
    };
  }
  return json.json;
}
