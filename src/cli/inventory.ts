/**
 * `bedrock-warden inventory <log-path-or-dir> [--policies dir]`: what each workload identity has
 * actually done, read from a decision log — its groups, the models and tools it used, how many of
 * its calls were allowed and denied, when it was last active — and, with the policies, the
 * permissions they grant it that it never used: least-privilege candidates.
 * @module
 */
import type { Governance } from "../governance.js";
import { MAX_LINE_BYTES } from "../audit/verify-log.js";
import { logFiles, fileLines, readLogLine, type LoggedRecord } from "./decision-log.js";
import { EXIT_FAILED, EXIT_OK, stringOption, type CliCommand, type CliIO } from "./io.js";
import { loadGovernance } from "./inputs.js";
import {
  actionsOf,
  describeActionScope,
  describeResourceScope,
  parseEntityRef,
  principalMayMatch,
  principalNamed,
  resourceMayMatch,
  type EntityJson,
} from "./policy-scopes.js";
import { plural } from "./validate.js";

export const inventoryCommand: CliCommand = {
  name: "inventory",
  summary: "what each workload did, from a decision log; unused permissions with --policies",
  usage: `Usage: bedrock-warden inventory <log-path-or-dir> [--policies dir] [--tools tools.json] [--json]

Reads a decision log (JSON Lines of decision records, hash-chained or not: a file and its
rotated files <path>.<firstSeq>-<lastSeq> beside it, or every file of a directory whose name
holds .jsonl, several logs allowed) and prints, for every workload identity seen: its
groups, the models and tools it used (allowed decisions), its calls and tool decisions allowed
and denied, and when it was last active.

With --policies, also the permissions the policies grant each identity: every permit whose
principal scope can match it (any principal, the workload, one of its groups), with the action
and resource scope it grants, marked
  used       an allowed record of the identity names the permit among its determining policies
  in-scope   no record names it, but an allowed record of the identity falls in its scope
             (its conditions may never have held, or the records predate its id)
  unused     no allowed record of the identity falls in its scope: a least-privilege candidate
Conditions (when/unless) are not read. An action group covers its member actions; a resource
"in" a model covers the model and the system inference profiles routing to it, "in" a provider
its models (read from the recorded model id: an application inference profile ARN is not
matched to the model it routes to). Principals the policies name that the log never shows are
listed too.

A line that cannot be read is reported as file:line: malformed record (...) and skipped.

Options:
  --policies <dir>   the policy directory to compare with
  --tools <file>     the tools file the policies are loaded with (as createGovernance({ tools }))
  --json             print one JSON object instead of text
  -h, --help         show this help

Exit codes: 0 read, 1 a malformed line (the inventory is printed all the same) or invalid
policies, 2 usage error.`,
  options: { policies: { type: "string" }, tools: { type: "string" }, json: { type: "boolean" } },
  positionals: { min: 1, max: 1 },
  async run([path], values, io) {
    const policiesDir = stringOption(values, "policies");
    const toolsPath = stringOption(values, "tools");
    const files = await logFiles(path!);
    // Policies first: a policy set that does not load is reported before the log is read.
    const governance = policiesDir === undefined ? undefined : loadGovernance(policiesDir, toolsPath, "inventory");
    const inventory = new Inventory();
    const malformed: { file: string; line: number; message: string }[] = [];
    let malformedCount = 0;
    for (const file of files) {
      for await (const { line, text } of fileLines(file)) {
        const read = text === undefined ? ({ kind: "malformed", message: `longer than ${MAX_LINE_BYTES} bytes, or not UTF-8: a decision record never is` } as const) : readLogLine(text);
        if (read.kind === "record") inventory.add(read.record);
        else if (read.kind === "event") inventory.events++;
        else if (read.kind === "malformed") {
          malformedCount++;
          // A file that is not a decision log at all would print one line per line: the first ones say enough.
          if (malformed.length < MAX_REPORTED_MALFORMED) {
            malformed.push({ file, line, message: read.message });
            io.err(`${file}:${line}: malformed record (${read.message})`);
          }
        }
      }
    }
    if (malformedCount > malformed.length) io.err(`... and ${malformedCount - malformed.length} more malformed lines`);
    const report = inventory.report(governance, policiesDir);
    if (values["json"] === true) io.out(JSON.stringify({ files, ...report, malformedLines: malformedCount, malformed }, null, 2));
    else printReport(io, report, files, malformedCount, policiesDir);
    return malformedCount > 0 ? EXIT_FAILED : EXIT_OK;
  },
};

/** Malformed lines reported one by one (the rest are counted). */
const MAX_REPORTED_MALFORMED = 50;

interface IdentityUsage {
  readonly id: string;
  readonly groups: Set<string>;
  calls: { allowed: number; denied: number };
  toolDecisions: { allowed: number; denied: number };
  lastActive: { time: string; ms: number } | undefined;
  readonly models: Map<string, number>;
  readonly tools: Map<string, number>;
  readonly otherResources: Map<string, number>;
  /** Distinct allowed (action, resource) pairs, with the policies that allowed them. */
  readonly allowed: Map<string, { action: string; resource: EntityJson; policies: Set<string> }>;
}

type PermissionStatus = "used" | "in-scope" | "unused";

interface Permission {
  readonly id: string;
  readonly source?: string;
  readonly line?: number;
  readonly action: string;
  readonly resource: string;
  readonly status: PermissionStatus;
  /** The actions of the identity's allowed records that fall in the permit's scope. */
  readonly usedActions: readonly string[];
  readonly shadow?: boolean;
}

class Inventory {
  readonly identities = new Map<string, IdentityUsage>();
  records = 0;
  events = 0;
  unidentified = { allowed: 0, denied: 0 };

  add(record: LoggedRecord): void {
    this.records++;
    const workload = record.workload;
    if (workload === null) {
      this.unidentified[record.decision === "allow" ? "allowed" : "denied"]++;
      return;
    }
    let usage = this.identities.get(workload.id);
    if (usage === undefined) {
      usage = {
        id: workload.id,
        groups: new Set(),
        calls: { allowed: 0, denied: 0 },
        toolDecisions: { allowed: 0, denied: 0 },
        lastActive: undefined,
        models: new Map(),
        tools: new Map(),
        otherResources: new Map(),
        allowed: new Map(),
      };
      this.identities.set(workload.id, usage);
    }
    for (const group of workload.groups) usage.groups.add(group);
    const resource = parseEntityRef(record.resource);
    const isTool = record.tool !== undefined || resource?.type === "Bedrock::Tool";
    const counts = isTool ? usage.toolDecisions : usage.calls;
    counts[record.decision === "allow" ? "allowed" : "denied"]++;
    const ms = Date.parse(record.time);
    if (usage.lastActive === undefined || ms > usage.lastActive.ms) usage.lastActive = { time: record.time, ms };
    if (record.decision !== "allow") return;
    const action = parseEntityRef(record.action)?.id ?? record.action;
    if (resource?.type === "Bedrock::Model") count(usage.models, resource.id);
    else if (resource?.type === "Bedrock::Tool") count(usage.tools, resource.id);
    else count(usage.otherResources, record.resource);
    if (resource === undefined) return;
    const key = `${action}\n${record.resource}`;
    const pair = usage.allowed.get(key) ?? { action, resource, policies: new Set<string>() };
    for (const id of record.policies) pair.policies.add(id);
    usage.allowed.set(key, pair);
  }

  report(governance: Governance | undefined, policiesDir: string | undefined) {
    const identities = [...this.identities.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    const named = new Map<string, { entity: EntityJson; policies: string[] }>();
    const shadow = (governance?.engine as { shadowPolicies?: ReadonlySet<string> } | undefined)?.shadowPolicies;
    if (governance) {
      for (const policy of governance.engine.policyScopes()) {
        const entity = principalNamed(policy.principal);
        if (policy.effect !== "permit" || entity === undefined) continue;
        const seen = [...this.identities.values()].some((usage) =>
          entity.type === "Bedrock::Workload" ? usage.id === entity.id : usage.groups.has(entity.id),
        );
        if (seen) continue;
        const key = `${entity.type}::${JSON.stringify(entity.id)}`;
        const entry = named.get(key) ?? { entity, policies: [] };
        entry.policies.push(policy.id);
        named.set(key, entry);
      }
    }
    return {
      records: this.records,
      chainEvents: this.events,
      identities: identities.map((usage) => ({
        id: usage.id,
        groups: [...usage.groups].sort(),
        calls: usage.calls,
        toolDecisions: usage.toolDecisions,
        lastActive: usage.lastActive?.time ?? null,
        models: Object.fromEntries([...usage.models].sort()),
        tools: Object.fromEntries([...usage.tools].sort()),
        otherResources: Object.fromEntries([...usage.otherResources].sort()),
        ...(governance && { permissions: permissionsOf(governance, usage, shadow) }),
      })),
      unidentified: this.unidentified,
      ...(governance && {
        policies: policiesDir,
        policySetVersion: governance.policySetVersion,
        principalsNeverSeen: [...named].map(([ref, { policies }]) => ({ principal: ref, policies })),
      }),
    };
  }
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** Every permit that can apply to the identity, with the scope it grants and whether it was used. */
function permissionsOf(governance: Governance, usage: IdentityUsage, shadow: ReadonlySet<string> | undefined): Permission[] {
  const { engine } = governance;
  const identity = { id: usage.id, groups: [...usage.groups] };
  const permissions: Permission[] = [];
  for (const policy of engine.policyScopes()) {
    if (policy.effect !== "permit" || engine.shadowPolicies.has(policy.id) || !principalMayMatch(policy.principal, identity)) continue;
    const actions = actionsOf(engine, policy.action);
    let determined = false;
    const usedActions = new Set<string>();
    for (const pair of usage.allowed.values()) {
      if (pair.policies.has(policy.id)) determined = true;
      if ((actions === "any" || actions.has(pair.action)) && resourceMayMatch(policy.resource, pair.resource)) usedActions.add(pair.action);
    }
    const loaded = engine.policies.get(policy.id);
    permissions.push({
      id: policy.id,
      ...(loaded && { source: loaded.source, line: loaded.line }),
      action: describeActionScope(policy.action),
      resource: describeResourceScope(policy.resource),
      status: determined ? "used" : usedActions.size > 0 ? "in-scope" : "unused",
      usedActions: [...usedActions].sort(),
      ...(shadow?.has(policy.id) && { shadow: true }),
    });
  }
  return permissions;
}

type Report = ReturnType<Inventory["report"]>;

function printReport(io: CliIO, report: Report, files: readonly string[], malformed: number, policiesDir: string | undefined): void {
  const counted = (map: Record<string, number>) =>
    Object.entries(map)
      .map(([name, n]) => `${name} (${n})`)
      .join(", ") || "none";
  let unused = 0;
  for (const identity of report.identities) {
    io.out(identity.id);
    io.out(`  groups: ${identity.groups.join(", ") || "none"}`);
    io.out(`  calls: ${identity.calls.allowed} allowed, ${identity.calls.denied} denied; tool decisions: ${identity.toolDecisions.allowed} allowed, ${identity.toolDecisions.denied} denied`);
    io.out(`  last active: ${identity.lastActive ?? "never"}`);
    io.out(`  models: ${counted(identity.models)}`);
    io.out(`  tools: ${counted(identity.tools)}`);
    if (Object.keys(identity.otherResources).length > 0) io.out(`  other resources: ${counted(identity.otherResources)}`);
    if (identity.permissions) {
      io.out(`  permissions granted by ${policiesDir} (conditions not read):`);
      if (identity.permissions.length === 0) io.out("    none: no permit can apply to this identity");
      for (const p of identity.permissions) {
        if (p.status === "unused") unused++;
        const where = p.source === undefined ? "" : ` (${p.source}:${p.line})`;
        const used = p.usedActions.length > 0 ? `; used for ${p.usedActions.join(", ")}` : "";
        io.out(`    ${p.status.padEnd(9)} ${p.id}${where}${p.shadow ? " [shadow]" : ""}: ${p.action} on ${p.resource}${used}`);
      }
    }
  }
  if (report.unidentified.allowed + report.unidentified.denied > 0) {
    io.out(`no identity: ${report.unidentified.denied} denied, ${report.unidentified.allowed} allowed`);
  }
  if (report.principalsNeverSeen && report.principalsNeverSeen.length > 0) {
    io.out(`principals the policies name that the log never shows:`);
    for (const { principal, policies } of report.principalsNeverSeen) io.out(`  ${principal}: ${policies.join(", ")}`);
  }
  const n = report.identities.length;
  const parts = [`${n} ${plural(n, "identity", "identities")}`, `${report.records} ${plural(report.records, "record")} in ${files.length} ${plural(files.length, "file")}`];
  if (malformed > 0) parts.push(`${malformed} malformed ${plural(malformed, "line")}`);
  io.out(parts.filter(Boolean).join(", ") + (policiesDir === undefined ? "" : `; ${unused} unused ${plural(unused, "permission")} (least-privilege candidates)`));
}
