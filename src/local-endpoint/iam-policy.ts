/**
 * IAM policy documents as session policies use them: parsing with AWS's validation messages, and
 * evaluation of one request (action, resource, condition keys) the way IAM decides it — an explicit
 * Deny wins, otherwise some Allow must match, otherwise the request is implicitly denied.
 *
 * Only what a session policy can hold is supported (no `Principal`). Conditions are evaluated for
 * the string, ARN, Bool and Null operators over the keys the caller supplies; anything else
 * (another operator, a set operator, a key the request context does not model) makes the statement
 * fail closed: an Allow with it never matches, a Deny with it always does.
 * @module
 */
import { isRecord } from "../records.js";

/**
 * One statement, normalized: every list is an array, condition values are strings.
 *
 * @example
 * ```ts
 * const statement: IamStatement = { effect: "Allow", action: ["bedrock:InvokeModel"], resource: ["*"], condition: { StringEquals: { "aws:RequestedRegion": ["us-east-1"] } } };
 * ```
 */
export interface IamStatement {
  sid?: string;
  effect: "Allow" | "Deny";
  /** Exactly one of `action` / `notAction` is set. */
  action?: string[];
  notAction?: string[];
  /** Exactly one of `resource` / `notResource` is set. */
  resource?: string[];
  notResource?: string[];
  /** operator → condition key → values. */
  condition?: Record<string, Record<string, string[]>>;
}

/**
 * A parsed, validated policy document.
 *
 * @example
 * ```ts
 * const parsed = parsePolicyDocument(text);
 * const policy: IamPolicy | undefined = "policy" in parsed ? parsed.policy : undefined;
 * ```
 */
export interface IamPolicy {
  statements: IamStatement[];
}

/**
 * What a request looks like to IAM.
 *
 * @example
 * ```ts
 * const request: IamRequest = {
 *   action: "bedrock:InvokeModel",
 *   resource: "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
 *   conditionKeys: { "aws:requestedregion": "us-east-1", "aws:sourceidentity": null },
 * };
 * ```
 */
export interface IamRequest {
  /** `service:Action`, e.g. `bedrock:InvokeModel`. */
  action: string;
  /** The ARN checked, or `*` for actions without resource-level permissions. */
  resource: string;
  /**
   * Condition keys the request context models, by lowercased name: a string when present, `null`
   * when known but absent from this request (IAM then treats positive operators as false and
   * negated ones as true). A key missing from this map is one the evaluator cannot judge.
   */
  conditionKeys: Record<string, string | null>;
  /** Lowercased key prefixes (e.g. `aws:principaltag/`) under which an unlisted key is known but absent. */
  knownKeyPrefixes?: string[];
}

/**
 * How IAM decided: `explicit-deny` names the Deny statement that matched.
 *
 * @example
 * ```ts
 * const decision: IamDecision = evaluatePolicy(policy, request);
 * if (decision.effect !== "allow") console.log(decision.effect); // "explicit-deny" | "implicit-deny"
 * ```
 */
export type IamDecision =
  | { effect: "allow"; statement: IamStatement }
  | { effect: "explicit-deny"; statement: IamStatement }
  | { effect: "implicit-deny" };

const STATEMENT_KEYS = new Set(["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal", "NotPrincipal"]);
const SYNTAX = "Syntax errors in policy.";

/**
 * Parses and validates a policy document. Returns AWS's MalformedPolicyDocument message on failure.
 *
 * @example
 * ```ts
 * parsePolicyDocument('{"Statement":{"Effect":"Allow","Action":"bedrock:*","Resource":"*"}}'); // { policy: { statements: [...] } }
 * parsePolicyDocument("{"); // { error: "Syntax errors in policy." }
 * ```
 */
export function parsePolicyDocument(text: string): { policy: IamPolicy } | { error: string } {
  let document: unknown;
  try {
    document = JSON.parse(text) as unknown;
  } catch {
    return { error: SYNTAX };
  }
  if (!isRecord(document)) return { error: SYNTAX };
  for (const key of Object.keys(document)) {
    if (key !== "Version" && key !== "Id" && key !== "Statement") return { error: `${SYNTAX} Unknown field ${key}` };
  }
  const version = document["Version"];
  if (version !== undefined && version !== "2012-10-17" && version !== "2008-10-17") return { error: "The policy failed legacy parsing" };
  const raw = document["Statement"];
  if (raw === undefined) return { error: "Missing required field Statement" };
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) return { error: "Missing required field Statement" };
  const statements: IamStatement[] = [];
  for (const entry of list) {
    const parsed = parseStatement(entry);
    if ("error" in parsed) return parsed;
    statements.push(parsed.statement);
  }
  return { policy: { statements } };
}

function parseStatement(entry: unknown): { statement: IamStatement } | { error: string } {
  if (!isRecord(entry)) return { error: SYNTAX };
  for (const key of Object.keys(entry)) if (!STATEMENT_KEYS.has(key)) return { error: `${SYNTAX} Unknown field ${key}` };
  if ("Principal" in entry || "NotPrincipal" in entry) return { error: "Policy document should not specify a principal." };
  const effect = entry["Effect"];
  if (effect !== "Allow" && effect !== "Deny") return { error: `Invalid effect: ${typeof effect === "string" ? effect : "(missing)"}` };
  const statement: IamStatement = { effect };
  if (typeof entry["Sid"] === "string") statement.sid = entry["Sid"];
  else if (entry["Sid"] !== undefined) return { error: SYNTAX };

  const actions = pickOne(entry, "Action", "NotAction");
  if (actions === "both") return { error: `${SYNTAX} A statement cannot have both Action and NotAction` };
  if (actions === undefined) return { error: "Policy statement must contain actions." };
  for (const action of actions.values) {
    if (action !== "*" && !/^[A-Za-z0-9*?-]+:[A-Za-z0-9*?]*$/.test(action)) {
      return { error: "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc." };
    }
  }
  if (actions.key === "Action") statement.action = actions.values;
  else statement.notAction = actions.values;

  const resources = pickOne(entry, "Resource", "NotResource");
  if (resources === "both") return { error: `${SYNTAX} A statement cannot have both Resource and NotResource` };
  if (resources === undefined) return { error: "Policy statement must contain resources." };
  for (const resource of resources.values) {
    if (resource !== "*" && !splitArn(resource)) return { error: `Resource ${resource} must be in ARN format or "*".` };
  }
  if (resources.key === "Resource") statement.resource = resources.values;
  else statement.notResource = resources.values;

  if (entry["Condition"] !== undefined) {
    const condition = parseCondition(entry["Condition"]);
    if (!condition) return { error: `${SYNTAX} Condition must map operators to objects of condition keys and values` };
    statement.condition = condition;
  }
  return { statement };
}

function pickOne(entry: Record<string, unknown>, key: string, notKey: string): { key: string; values: string[] } | "both" | undefined {
  if (key in entry && notKey in entry) return "both";
  const chosen = key in entry ? key : notKey in entry ? notKey : undefined;
  if (!chosen) return undefined;
  const value = entry[chosen];
  const values = typeof value === "string" ? [value] : Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : undefined;
  return values && values.length > 0 ? { key: chosen, values } : undefined;
}

function parseCondition(value: unknown): Record<string, Record<string, string[]>> | undefined {
  if (!isRecord(value)) return undefined;
  const result: Record<string, Record<string, string[]>> = {};
  for (const [operator, block] of Object.entries(value)) {
    if (!isRecord(block)) return undefined;
    const keys: Record<string, string[]> = {};
    for (const [key, raw] of Object.entries(block)) {
      const list = Array.isArray(raw) ? raw : [raw];
      if (list.length === 0 || !list.every((v) => typeof v === "string" || typeof v === "boolean" || typeof v === "number")) return undefined;
      keys[key] = list.map(String);
    }
    result[operator] = keys;
  }
  return result;
}

/**
 * Decides a request against a policy: an explicit Deny wins, then any Allow, else implicit deny.
 *
 * @example
 * ```ts
 * const { policy } = parsePolicyDocument('{"Statement":{"Effect":"Allow","Action":"bedrock:Invoke*","Resource":"*"}}') as { policy: IamPolicy };
 * evaluatePolicy(policy, { action: "bedrock:InvokeModel", resource: "*", conditionKeys: {} }).effect; // "allow"
 * ```
 */
export function evaluatePolicy(policy: IamPolicy, request: IamRequest): IamDecision {
  let allowed: IamStatement | undefined;
  for (const statement of policy.statements) {
    if (!matchesScope(statement, request)) continue;
    const condition = evaluateCondition(statement.condition, request);
    if (statement.effect === "Deny") {
      // Fail closed: a Deny whose condition cannot be judged applies.
      if (condition !== false) return { effect: "explicit-deny", statement };
    } else if (condition === true) {
      allowed ??= statement;
    }
  }
  return allowed ? { effect: "allow", statement: allowed } : { effect: "implicit-deny" };
}

function matchesScope(statement: IamStatement, request: IamRequest): boolean {
  const actionMatches = (patterns: string[]) => patterns.some((pattern) => wildcardMatch(pattern.toLowerCase(), request.action.toLowerCase()));
  const resourceMatches = (patterns: string[]) => patterns.some((pattern) => arnMatch(pattern, request.resource));
  const action = statement.action ? actionMatches(statement.action) : !actionMatches(statement.notAction ?? []);
  const resource = statement.resource ? resourceMatches(statement.resource) : !resourceMatches(statement.notResource ?? []);
  return action && resource;
}

/**
 * Resource matching: `*` matches anything; otherwise both must be ARNs, and a wildcard stays inside
 * its ARN segment (partition, service, region, account), except in the resource part, which may
 * itself hold `:` and `/` (model ids do). Case-sensitive, as IAM compares ARNs.
 *
 * @example
 * ```ts
 * arnMatch("arn:aws:bedrock:*::foundation-model/amazon.*", "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"); // true
 * arnMatch("arn:aws:bedrock:*::foundation-model/*", "*"); // false
 * ```
 */
export function arnMatch(pattern: string, arn: string): boolean {
  if (pattern === "*") return true;
  const want = splitArn(pattern);
  const have = splitArn(arn);
  // An ARN pattern never matches `*` (the resource of actions without resource-level permissions).
  if (!want || !have) return false;
  return want.every((segment, i) => wildcardMatch(segment, have[i]!));
}

function splitArn(arn: string): string[] | undefined {
  const parts = arn.split(":");
  if (parts.length < 6 || parts[0] !== "arn") return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(":")];
}

/**
 * `*` is any run of characters, `?` any one character; everything else is literal.
 *
 * @example
 * ```ts
 * wildcardMatch("bedrock:invoke*", "bedrock:invokemodel"); // true
 * ```
 */
export function wildcardMatch(pattern: string, value: string): boolean {
  // Iterative glob with backtracking to the last `*`: linear in practice, never exponential.
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    if (p < pattern.length && (pattern[p] === "?" || pattern[p] === value[v])) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      mark = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

type Comparator = (actual: string, expected: string) => boolean;

const COMPARATORS: Readonly<Record<string, { compare: Comparator; negated: boolean }>> = {
  stringequals: { compare: (a, e) => a === e, negated: false },
  stringnotequals: { compare: (a, e) => a === e, negated: true },
  stringequalsignorecase: { compare: (a, e) => a.toLowerCase() === e.toLowerCase(), negated: false },
  stringnotequalsignorecase: { compare: (a, e) => a.toLowerCase() === e.toLowerCase(), negated: true },
  stringlike: { compare: (a, e) => wildcardMatch(e, a), negated: false },
  stringnotlike: { compare: (a, e) => wildcardMatch(e, a), negated: true },
  arnequals: { compare: (a, e) => arnMatch(e, a), negated: false },
  arnlike: { compare: (a, e) => arnMatch(e, a), negated: false },
  arnnotequals: { compare: (a, e) => arnMatch(e, a), negated: true },
  arnnotlike: { compare: (a, e) => arnMatch(e, a), negated: true },
  bool: { compare: (a, e) => a.toLowerCase() === e.toLowerCase(), negated: false },
};

/**
 * `true` / `false` when every operator and key could be judged, `undefined` when one could not.
 * Operators AND together, keys within an operator AND, values of one key OR (NOR when negated).
 */
function evaluateCondition(condition: IamStatement["condition"], request: IamRequest): boolean | undefined {
  if (!condition) return true;
  let result = true;
  for (const [rawOperator, keys] of Object.entries(condition)) {
    const operator = rawOperator.toLowerCase();
    const ifExists = operator.endsWith("ifexists") && operator !== "null";
    const base = ifExists ? operator.slice(0, -"ifexists".length) : operator;
    for (const [rawKey, expected] of Object.entries(keys)) {
      const actual = lookupKey(request, rawKey.toLowerCase());
      if (actual === undefined) return undefined;
      if (base === "null") {
        const wantsAbsent = expected.map((e) => e.toLowerCase());
        if (!wantsAbsent.every((e) => e === "true" || e === "false")) return undefined;
        if (!wantsAbsent.includes(actual === null ? "true" : "false")) result = false;
        continue;
      }
      const comparator = COMPARATORS[base];
      if (!comparator) return undefined;
      if (actual === null) {
        if (!ifExists && !comparator.negated) result = false;
        continue;
      }
      const any = expected.some((value) => comparator.compare(actual, value));
      if (comparator.negated ? any : !any) result = false;
    }
  }
  return result;
}

function lookupKey(request: IamRequest, key: string): string | null | undefined {
  if (Object.prototype.hasOwnProperty.call(request.conditionKeys, key)) return request.conditionKeys[key];
  return request.knownKeyPrefixes?.some((prefix) => key.startsWith(prefix)) ? null : undefined;
}

