/**
 * Reading what the commands are given — a policy directory, a tools file, JSON files — and
 * building the governance from them exactly as an application would (`createGovernance`), with
 * every problem located as `file:line:column: message`.
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import { ConfigurationError, formatProblem, PolicyLoadError } from "../errors.js";
import { createGovernance, type Governance } from "../governance.js";
import type { PolicyEvaluator } from "../policy/cedar-engine.js";
import { policiesFromDirectory, type PolicyDocument } from "../policy/sources.js";
import { declareTools, type ToolDefinition } from "../tools/tool-definitions.js";
import { messageOf, UsageError } from "./io.js";
import { arrayElementOffsets, lineAndColumn, parseJson } from "./json-location.js";

/**
 * Inputs that fail a check (policies that do not validate, a malformed tools file): each problem
 * is one line, `file:line:column: message`; the command prints them and exits 1.
 */
export class InputProblems extends Error {
  override readonly name = "InputProblems";
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.problems = problems;
  }
}

/** `file:line:column: message` (or `file: message` when the offset is unknown). */
export function locate(source: string, text: string, offset: number | undefined, message: string): string {
  if (offset === undefined) return `${source}: ${message}`;
  const { line, column } = lineAndColumn(text, offset);
  return `${source}:${line}:${column}: ${message}`;
}

/** Throws {@link UsageError} unless `path` is an existing file (or directory, when `directory` is true). */
export function requirePath(path: string, what: string, kind: "file" | "directory" | "either"): "file" | "directory" {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new UsageError(`${path}: no such ${kind === "either" ? "file or directory" : kind} (the ${what})`);
  }
  const found = stats.isDirectory() ? "directory" : "file";
  if (kind !== "either" && found !== kind) throw new UsageError(`${path}: is a ${found}, not a ${kind} (the ${what})`);
  return found;
}

/** A text file's content; {@link UsageError} when it does not exist or cannot be read. `-` reads stdin. */
export function readText(path: string, what: string): string {
  if (path === "-") return readFileSync(0, "utf8");
  requirePath(path, what, "file");
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`${path}: cannot be read (${messageOf(error)})`);
  }
}

/** A whole JSON file, parsed; {@link InputProblems} (with line and column) when it is not JSON. */
export function readJson(path: string, what: string): { readonly text: string; readonly value: unknown } {
  const text = readText(path, what);
  const parsed = parseJson(text);
  if (!parsed.ok) throw new InputProblems([locate(path, text, parsed.offset, parsed.message)]);
  return { text, value: parsed.value };
}

/**
 * The tools of a `--tools` file: a JSON array of tool definitions (`{ name, effect, sensitivity?,
 * owner?, inputSchema?, serverSide? }`), each checked as `createGovernance({ tools })` checks it,
 * a problem reported at the line of the tool it is about.
 */
export function readTools(path: string): ToolDefinition[] {
  const { text, value } = readJson(path, "tools file");
  if (!Array.isArray(value)) {
    throw new InputProblems([locate(path, text, 0, "must be a JSON array of tool definitions ({ name, effect, sensitivity?, owner?, inputSchema?, serverSide? })")]);
  }
  const offsets = arrayElementOffsets(text);
  const problems: string[] = [];
  const seen = new Map<string, number>();
  value.forEach((tool, index) => {
    try {
      declareTools([tool as ToolDefinition]);
    } catch (error) {
      const message = messageOf(error).replace(/^Invalid governance\.tools\[0\]: /, "").replace(/^governance\.tools /, "");
      problems.push(locate(path, text, offsets[index], `tools[${index}]: ${message}`));
      return;
    }
    const name = (tool as ToolDefinition).name;
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push(locate(path, text, offsets[index], `tools[${index}]: "${name}" is already declared by tools[${first}]: declare each tool once`));
    } else seen.set(name, index);
  });
  if (problems.length > 0) throw new InputProblems(problems);
  return value as ToolDefinition[];
}

/** Every `*.cedar` file under a directory ({@link UsageError} when it is not a directory). */
export function readPolicies(directory: string): PolicyDocument[] {
  requirePath(directory, "policy directory", "directory");
  try {
    return policiesFromDirectory(directory);
  } catch (error) {
    throw new InputProblems([`${directory}: ${messageOf(error)}`]);
  }
}

/**
 * The governance an application would build from these policies and tools: the policies are
 * validated against the shipped schema (extended with the tools' actions), exactly as at start-up.
 * A policy that does not parse or validate is an {@link InputProblems} with one line per problem.
 */
export function buildGovernance(options: {
  policies: readonly PolicyDocument[];
  tools?: readonly ToolDefinition[];
  environment: string;
  evaluator?: PolicyEvaluator;
}): Governance {
  try {
    return createGovernance({
      environment: options.environment,
      policies: options.policies,
      ...(options.tools && { tools: options.tools }),
      ...(options.evaluator && { evaluator: options.evaluator }),
    });
  } catch (error) {
    if (error instanceof PolicyLoadError) throw new InputProblems(error.problems.map(formatProblem));
    if (error instanceof ConfigurationError) throw new InputProblems([error.message]);
    throw error;
  }
}

/** Reads the options every policy command shares: the policy directory and `--tools`. */
export function loadGovernance(directory: string, toolsPath: string | undefined, environment: string, evaluator?: PolicyEvaluator): Governance {
  const policies = readPolicies(directory);
  const tools = toolsPath === undefined ? undefined : readTools(toolsPath);
  return buildGovernance({ policies, ...(tools && { tools }), environment, ...(evaluator && { evaluator }) });
}
