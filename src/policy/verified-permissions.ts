/**
 * `syncFromVerifiedPermissions(governance, { policyStoreId })`: the policies (and the schema) of an
 * Amazon Verified Permissions policy store, loaded into the local engine. Decisions stay local
 * (no IsAuthorized call per request); the store is where policies are managed. A store that does
 * not load — a policy that does not parse or validate, a template-linked policy, a schema that does
 * not describe the calls this library decides, an unreachable service — is reported and the last
 * good set keeps deciding.
 * @module
 */
import { createHash } from "node:crypto";
import type { VerifiedPermissionsClient, VerifiedPermissionsClientConfig } from "@aws-sdk/client-verifiedpermissions";
import type * as cedar from "./cedar-wasm.js";
import { z } from "zod";
import { withDeadline } from "../deadline.js";
import { ConfigurationError, PolicyLoadError, WardenError, type PolicyProblem } from "../errors.js";
import type { Governance } from "../governance.js";
import { describeZodError } from "../validation.js";
import { wasm } from "./cedar-wasm.js";
import { claimPolicyFeed } from "./policy-feed.js";
import { policyTextProblems } from "./policy-text-limits.js";
import { shippedSchema } from "./schema.js";
import type { PolicyDocument } from "./sources.js";

/**
 * Syncing a policy store failed for a reason outside its policies: the service could not be
 * reached, refused the call (access denied, throttling that outlasted the SDK's retries), or the
 * store or a listed policy does not exist. The last good set keeps deciding. Policies and schemas
 * that do not load are a {@link PolicyLoadError} instead, each problem naming `avp:<store>/<policy id>`.
 *
 * @example
 * ```ts
 * try { await avp.sync(); }
 * catch (e) { if (e instanceof PolicySyncError) console.error(e.operation, e.policyId, e.cause); }
 * ```
 */
export class PolicySyncError extends WardenError {
  override readonly code = "ERR_POLICY_SYNC";
  override readonly name = "PolicySyncError";
  /** The policy store being synced. */
  readonly policyStoreId: string;
  /** The Verified Permissions operation that failed, e.g. `"ListPolicies"`. */
  readonly operation: string | undefined;
  /** The policy the failed call was about, when it was about one. */
  readonly policyId: string | undefined;

  constructor(message: string, details: { policyStoreId: string; operation?: string; policyId?: string; cause?: unknown }) {
    super(message, { cause: details.cause });
    this.policyStoreId = details.policyStoreId;
    this.operation = details.operation;
    this.policyId = details.policyId;
  }
}

/**
 * Options of {@link syncFromVerifiedPermissions}.
 *
 * @example
 * ```ts
 * const options: VerifiedPermissionsSyncOptions = {
 *   policyStoreId: "PSEXAMPLEabcdefg111111",
 *   clientConfig: { region: "eu-west-1" },
 *   intervalMs: 60_000,
 *   onError: (error, kept) => logger.error({ kept, error: error.message }, "policy store not synced"),
 * };
 * ```
 */
export interface VerifiedPermissionsSyncOptions {
  /** The policy store's id (`PSEXAMPLEabcdefg111111`). */
  readonly policyStoreId: string;
  /** A Verified Permissions client of your own (not destroyed by `close()`). */
  readonly client?: VerifiedPermissionsClient;
  /** The configuration of the client created when `client` is not given (region, credentials, endpoint...). */
  readonly clientConfig?: VerifiedPermissionsClientConfig;
  /**
   * Which schema the policies are validated against: `"store"` (the store's own; a store without
   * one fails the sync) or `"shipped"` (`schema/bedrock-warden.cedarschema`, the store's ignored).
   * Default: the store's when it has one, else the shipped one.
   */
  readonly schema?: "store" | "shipped";
  /**
   * Syncs again every `intervalMs` (after each sync ends); off by default. A minute or more suits
   * most stores. A periodic sync is the one source reloading the governance's policies until it is
   * closed: a watcher or another periodic sync on the same governance is refused.
   */
  readonly intervalMs?: number;
  /**
   * How long one request to the store may take (default 30,000 ms): past it the request is
   * abandoned and the sync fails, so that a store that hangs cannot stop syncing for good (the
   * next periodic sync is only scheduled once one ends).
   */
  readonly requestTimeoutMs?: number;
  /** Called after each periodic sync that succeeded (changed or not). */
  readonly onSync?: (result: VerifiedPermissionsSyncResult) => void;
  /**
   * Called when a periodic sync failed; the set that decided before keeps deciding (`keptVersion`).
   * Default: `process.emitWarning`. (A `sync()` you call yourself rejects instead.)
   */
  readonly onError?: (error: PolicyLoadError | PolicySyncError | Error, keptVersion: string) => void;
}

/**
 * What one sync did.
 *
 * @example
 * ```ts
 * const result: VerifiedPermissionsSyncResult = await avp.sync();
 * if (result.changed) console.log(`now deciding with ${result.version}: ${result.policies.map((p) => p.policyId).join(", ")}`);
 * ```
 */
export interface VerifiedPermissionsSyncResult {
  readonly policyStoreId: string;
  /** The version deciding after the sync. */
  readonly version: string;
  /** The version that decided before it. */
  readonly previousVersion: string;
  /** Whether the store differed from the set deciding (false: nothing was reloaded). */
  readonly changed: boolean;
  /**
   * Every policy loaded: its Verified Permissions id, the name decisions give it (its `@id`
   * annotation when it has one, else its policy id) and the source its problems are reported under.
   */
  readonly policies: readonly { readonly policyId: string; readonly name: string; readonly source: string }[];
  /** The schema the policies were validated against. */
  readonly schema: "store" | "shipped";
  readonly syncedAt: Date;
}

/**
 * A running sync, from {@link syncFromVerifiedPermissions}.
 *
 * @example
 * ```ts
 * await avp.sync();
 * console.log(avp.lastSync?.version);
 * await avp.close();
 * ```
 */
export interface VerifiedPermissionsSync {
  /**
   * Reads the store and reloads it when it changed. Rejects when it cannot be loaded (the set that
   * decided before keeps deciding). Calls made while a sync runs share the next one.
   */
  sync(): Promise<VerifiedPermissionsSyncResult>;
  /** The last successful sync. */
  readonly lastSync: VerifiedPermissionsSyncResult | undefined;
  /** Stops the periodic sync, waits for a running one to end, and destroys the client it created. */
  close(): Promise<void>;
}

type VerifiedPermissionsModule = typeof import("@aws-sdk/client-verifiedpermissions");

let sdk: Promise<VerifiedPermissionsModule> | undefined;
// Loaded on first use: applications that never sync from Verified Permissions never load its client.
const loadSdk = (): Promise<VerifiedPermissionsModule> => (sdk ??= import("@aws-sdk/client-verifiedpermissions"));


/** Verified Permissions returns at most 50 policies per page. */
const PAGE_SIZE = 50;
/** GetPolicy calls in flight at once. */
const CONCURRENCY = 8;

const optionsSchema = z
  .object({
    policyStoreId: z
      .string({ error: 'is required: the policy store id, e.g. "PSEXAMPLEabcdefg111111"' })
      .min(1, "must not be empty")
      .max(200, "must be at most 200 characters")
      .regex(/^[a-zA-Z0-9\-/_]+$/, "must be a policy store id (letters, digits, - / _)"),
    client: z
      .custom<VerifiedPermissionsClient>((v) => typeof (v as { send?: unknown } | undefined)?.send === "function", {
        message: "must be a VerifiedPermissionsClient from @aws-sdk/client-verifiedpermissions",
      })
      .optional(),
    clientConfig: z.custom<VerifiedPermissionsClientConfig>((v) => typeof v === "object" && v !== null, { message: "must be a VerifiedPermissionsClient configuration object" }).optional(),
    schema: z.enum(["store", "shipped"], { error: 'must be "store" or "shipped"' }).optional(),
    intervalMs: z.number({ error: "must be a number of milliseconds" }).int("must be a whole number").min(10, "must be at least 10").max(86_400_000, "must be at most a day").optional(),
    requestTimeoutMs: z.number({ error: "must be a number of milliseconds" }).int("must be a whole number").min(10, "must be at least 10").max(600_000, "must be at most 10 minutes").optional(),
    onSync: z.custom<VerifiedPermissionsSyncOptions["onSync"]>((v) => typeof v === "function", { message: "must be a function (result) => void" }).optional(),
    onError: z.custom<VerifiedPermissionsSyncOptions["onError"]>((v) => typeof v === "function", { message: "must be a function (error, keptVersion) => void" }).optional(),
  })
  .strict()
  .refine((o) => !(o.client && o.clientConfig), { message: "give either client or clientConfig, not both" });

/**
 * Loads the policies of an Amazon Verified Permissions policy store into the governance, and keeps
 * them in sync when `intervalMs` is given. Each sync lists the store's policies (ListPolicies),
 * reads each one's statement (GetPolicy) and the store's schema (GetSchema, Cedar JSON), and
 * reloads the governance with them (`governance.reload`), validated in full first: a store that
 * does not load keeps the last good set deciding, and the error names the policy. Nothing is
 * reloaded when the store did not change.
 *
 * Decisions name each policy by its `@id` annotation when it has one, else by its Verified
 * Permissions policy id; problems are reported under `avp:<policyStoreId>/<policyId>`.
 * Template-linked policies are refused (templates are not supported): the whole sync fails rather
 * than deciding without them. The store's schema must describe the `Bedrock` namespace with every
 * action of the shipped schema and its groups (start from `schema/bedrock-warden.cedarschema`,
 * converted to JSON, and add to it).
 *
 * Call `sync()` once at start-up: the first periodic sync runs `intervalMs` later.
 *
 * @example
 * ```ts
 * import { createGovernance, syncFromVerifiedPermissions } from "bedrock-warden";
 *
 * const governance = createGovernance({ environment: "production", policies: "forbid (principal, action, resource);" });
 * const avp = syncFromVerifiedPermissions(governance, { policyStoreId: "PSEXAMPLEabcdefg111111", clientConfig: { region: "us-east-1" }, intervalMs: 60_000 });
 * const { version, policies } = await avp.sync(); // throws when the store cannot be loaded
 * console.log(`deciding with ${version}: ${policies.length} policies`);
 * ```
 * @throws {@link ConfigurationError} for a malformed option, or — with `intervalMs` — when another
 * source (a watcher, a periodic sync) already reloads this governance's policies and is not closed.
 */
export function syncFromVerifiedPermissions(governance: Governance, options: VerifiedPermissionsSyncOptions): VerifiedPermissionsSync {
  if (typeof (governance as Partial<Governance> | undefined)?.reload !== "function") {
    throw new ConfigurationError("syncFromVerifiedPermissions needs the governance from createGovernance() as its first argument");
  }
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new ConfigurationError(`Invalid Verified Permissions sync options: ${describeZodError(parsed.error, "options", optionsSchema)}`);
  // A sync that runs only when asked to is like a reload by hand; one that runs by itself keeps the policies.
  const release = options.intervalMs === undefined ? () => {} : claimPolicyFeed(governance, `syncFromVerifiedPermissions("${options.policyStoreId}", { intervalMs })`);
  return new StoreSync(governance, options, release);
}

/** A static policy as read from the store. */
interface StorePolicy {
  readonly policyId: string;
  readonly statement: string;
}

class StoreSync implements VerifiedPermissionsSync {
  readonly #governance: Governance;
  readonly #storeId: string;
  readonly #options: VerifiedPermissionsSyncOptions;
  #client: VerifiedPermissionsClient | undefined;
  readonly #ownsClient: boolean;
  #running: Promise<VerifiedPermissionsSyncResult> | undefined;
  #queued: Promise<VerifiedPermissionsSyncResult> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** What was last loaded, to skip a reload (and keep the decision cache) when nothing changed. */
  #applied: { fingerprint: string; version: string } | undefined;
  #lastSync: VerifiedPermissionsSyncResult | undefined;
  /**
   * Statements already read, by policy id, with the creation and update dates they were read at: a
   * policy listed with the same dates is not read again (a periodic sync of an unchanged store
   * costs its ListPolicies pages, not one GetPolicy per policy).
   */
  #statements = new Map<string, { stamp: string; statement: string }>();

  readonly #release: () => void;

  constructor(governance: Governance, options: VerifiedPermissionsSyncOptions, release: () => void) {
    this.#governance = governance;
    this.#release = release;
    this.#storeId = options.policyStoreId;
    this.#options = options;
    this.#client = options.client;
    this.#ownsClient = options.client === undefined;
    this.#scheduleNext();
  }

  get lastSync(): VerifiedPermissionsSyncResult | undefined {
    return this.#lastSync;
  }

  sync(): Promise<VerifiedPermissionsSyncResult> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (!this.#running) return this.#start();
    // One sync at a time; a call made during one gets the next (it may have missed the change it wants).
    this.#queued ??= this.#running.then(
      () => this.#start(),
      () => this.#start(),
    );
    return this.#queued;
  }

  async close(): Promise<void> {
    this.#closed = true;
    // A closed sync loads nothing more (a sync in flight is refused before it reloads): another
    // source may take over at once.
    this.#release();
    clearTimeout(this.#timer);
    await Promise.allSettled([this.#running, this.#queued]);
    if (this.#ownsClient) this.#client?.destroy();
  }

  #start(): Promise<VerifiedPermissionsSyncResult> {
    this.#queued = undefined;
    if (this.#closed) return Promise.reject(this.#closedError());
    const run = this.#syncOnce();
    this.#running = run;
    void run.then(
      () => this.#settled(run),
      () => this.#settled(run),
    );
    return run;
  }

  #settled(run: Promise<VerifiedPermissionsSyncResult>): void {
    if (this.#running === run && !this.#queued) this.#running = undefined;
  }

  #scheduleNext(): void {
    const interval = this.#options.intervalMs;
    if (interval === undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.sync().then(
        (result) => {
          if (this.#options.onSync) callSafely("onSync", () => this.#options.onSync!(result));
        },
        (error: unknown) => {
          if (this.#closed && error instanceof PolicySyncError && error.operation === undefined) return;
          const reported = error instanceof Error ? error : new Error(String(error));
          const kept = this.#governance.policySetVersion;
          const onError = this.#options.onError ?? defaultOnError(this.#storeId);
          callSafely("onError", () => onError(reported, kept));
        },
      ).finally(() => this.#scheduleNext());
    }, interval);
    this.#timer.unref();
  }

  async #syncOnce(): Promise<VerifiedPermissionsSyncResult> {
    const sdkModule = await loadSdk();
    this.#client ??= new sdkModule.VerifiedPermissionsClient(this.#options.clientConfig ?? {});
    const client = this.#client;
    const storeId = this.#storeId;

    const policies = await this.#readPolicies(sdkModule, client);
    const schema = await this.#readSchema(sdkModule, client);
    if (this.#closed) throw this.#closedError();

    const problems: PolicyProblem[] = [];
    if (policies.length === 0) {
      problems.push({
        source: `avp:${storeId}`,
        message: "the policy store holds no policy: an empty set would deny every call. Add policies to the store (or check the policyStoreId)",
      });
    }
    const documents: PolicyDocument[] = [];
    const named: { policyId: string; name: string; source: string }[] = [];
    /** How many characters were put before each statement's first line (an `@id` naming it by its policy id). */
    const prefixes = new Map<string, number>();
    for (const policy of policies) {
      const source = `avp:${storeId}/${policy.policyId}`;
      // The limits before any parser sees the statement (naming it parses it): a store's statement
      // is hostile until checked, as a file's text is.
      const limits = policy.statement.length > MAX_STATEMENT_CHARS
        ? [{ source, message: `policy ${policy.policyId} is longer than ${MAX_STATEMENT_CHARS} characters, which no reviewable policy is` }]
        : policyTextProblems(source, policy.statement);
      if (limits.length > 0) {
        problems.push(...limits);
        continue;
      }
      const { text, name, prefix, problem } = nameStatement(policy);
      if (problem) {
        problems.push({ source, message: problem });
        continue;
      }
      if (prefix > 0) prefixes.set(source, prefix);
      documents.push({ source, text });
      named.push({ policyId: policy.policyId, name: name ?? policy.policyId, source });
    }
    if (schema.problem) problems.push({ source: `avp:${storeId}/schema`, message: schema.problem });
    if (problems.length > 0) throw new PolicyLoadError(problems);

    const fingerprint = fingerprintOf(schema.text, documents);
    const previousVersion = this.#governance.policySetVersion;
    let version = previousVersion;
    const unchanged = this.#applied?.fingerprint === fingerprint && this.#applied.version === previousVersion;
    if (!unchanged) {
      // A sync that was reading the store when the sync was closed loads nothing.
      if (this.#closed) throw this.#closedError();
      try {
        version = this.#governance.reload(documents, schema.text === undefined ? {} : { schema: schema.text });
      } catch (error) {
        throw error instanceof PolicyLoadError ? relocate(error, prefixes) : error;
      }
      this.#applied = { fingerprint, version };
    }
    const result: VerifiedPermissionsSyncResult = Object.freeze({
      policyStoreId: storeId,
      version,
      previousVersion,
      changed: version !== previousVersion,
      policies: Object.freeze(named.map((p) => Object.freeze(p))),
      schema: schema.text === undefined ? "shipped" : "store",
      syncedAt: new Date(),
    });
    this.#lastSync = result;
    return result;
  }

  /** Every policy of the store with its statement; template-linked ones refused. */
  async #readPolicies(module: VerifiedPermissionsModule, client: VerifiedPermissionsClient): Promise<StorePolicy[]> {
    const storeId = this.#storeId;
    const listed: { policyId: string; stamp: string | undefined }[] = [];
    const refused: PolicyProblem[] = [];
    const seenTokens = new Set<string>();
    let nextToken: string | undefined;
    do {
      const page = await this.#call("ListPolicies", undefined, () =>
        this.#timed((abortSignal) => client.send(new module.ListPoliciesCommand({ policyStoreId: storeId, maxResults: PAGE_SIZE, ...(nextToken ? { nextToken } : {}) }), { abortSignal })),
      );
      for (const item of page.policies ?? []) {
        const policyId = item.policyId;
        if (!policyId) throw new PolicySyncError(`ListPolicies on policy store ${storeId} returned a policy without a policyId`, { policyStoreId: storeId, operation: "ListPolicies" });
        const linked = item.definition?.templateLinked;
        if (linked || item.policyType === "TEMPLATE_LINKED") {
          refused.push(templateLinkedProblem(storeId, policyId, linked?.policyTemplateId));
        } else if (item.definition && !item.definition.static) {
          refused.push({ source: `avp:${storeId}/${policyId}`, message: `policy ${policyId} is of a kind this version does not know (${item.policyType ?? "no policyType"}): upgrade bedrock-warden` });
        } else {
          listed.push({ policyId, stamp: stampOf(item.createdDate, item.lastUpdatedDate) });
        }
      }
      nextToken = page.nextToken || undefined;
      if (nextToken !== undefined) {
        if (seenTokens.has(nextToken)) throw new PolicySyncError(`ListPolicies on policy store ${storeId} returned the same nextToken twice`, { policyStoreId: storeId, operation: "ListPolicies" });
        seenTokens.add(nextToken);
      }
    } while (nextToken !== undefined);
    if (refused.length > 0) throw new PolicyLoadError(refused);

    // ListPolicies gives each policy's scope but not its statement: GetPolicy reads it, unless it
    // was read before and the policy has not been updated since.
    const known = this.#statements;
    const policies: StorePolicy[] = new Array(listed.length);
    const toRead: number[] = [];
    listed.forEach(({ policyId, stamp }, index) => {
      const cached = stamp === undefined ? undefined : known.get(policyId);
      if (cached && cached.stamp === stamp) policies[index] = { policyId, statement: cached.statement };
      else toRead.push(index);
    });
    const read = new Map<string, { stamp: string; statement: string }>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < toRead.length) {
        const index = toRead[next++]!;
        const { policyId } = listed[index]!;
        const detail = await this.#call("GetPolicy", policyId, () => this.#timed((abortSignal) => client.send(new module.GetPolicyCommand({ policyStoreId: storeId, policyId }), { abortSignal })));
        const linked = detail.definition?.templateLinked;
        if (linked || detail.policyType === "TEMPLATE_LINKED") throw new PolicyLoadError([templateLinkedProblem(storeId, policyId, linked?.policyTemplateId)]);
        const statement = detail.definition?.static?.statement;
        if (typeof statement !== "string") {
          throw new PolicySyncError(`GetPolicy returned no statement for policy ${policyId} of policy store ${storeId}`, { policyStoreId: storeId, operation: "GetPolicy", policyId });
        }
        policies[index] = { policyId, statement };
        // Remembered under the dates GetPolicy gives (the statement's own), not the listing's.
        const stamp = stampOf(detail.createdDate, detail.lastUpdatedDate);
        if (stamp !== undefined) read.set(policyId, { stamp, statement });
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, toRead.length) }, worker));
    // Only the policies the store still has are remembered.
    this.#statements = new Map(listed.flatMap(({ policyId }) => {
      const entry = read.get(policyId) ?? known.get(policyId);
      return entry ? [[policyId, entry] as const] : [];
    }));
    return policies.sort((a, b) => (a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0));
  }

  /** The store's schema as Cedar text, undefined for the shipped one, or why it cannot be used. */
  async #readSchema(module: VerifiedPermissionsModule, client: VerifiedPermissionsClient): Promise<{ text?: string; problem?: string }> {
    const choice = this.#options.schema;
    if (choice === "shipped") return {};
    let json: string | undefined;
    try {
      json = (await this.#timed((abortSignal) => client.send(new module.GetSchemaCommand({ policyStoreId: this.#storeId }), { abortSignal }))).schema;
    } catch (error) {
      if ((error as { name?: unknown } | undefined)?.name === "ResourceNotFoundException" && isSchemaMissing(error)) {
        if (choice === "store") return { problem: 'the policy store has no schema, and schema: "store" was asked for (put one in the store, or use schema: "shipped")' };
        return {};
      }
      throw this.#wrap("GetSchema", undefined, error);
    }
    if (json === undefined || json === "") {
      return choice === "store" ? { problem: "the policy store's schema is empty" } : {};
    }
    return storeSchemaText(json);
  }

  /** One request to the store, abandoned after `requestTimeoutMs`: the SDK is asked to abort it, and it is not awaited beyond. */
  #timed<T>(request: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const timeoutMs = this.#options.requestTimeoutMs ?? 30_000;
    const controller = new AbortController();
    return withDeadline(request(controller.signal), timeoutMs, () => {
      controller.abort();
      return Object.assign(new Error(`the store did not answer within ${timeoutMs} ms (requestTimeoutMs)`), { name: "TimeoutError" });
    });
  }

  async #call<T>(operation: string, policyId: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw this.#closedError();
    try {
      return await fn();
    } catch (error) {
      throw this.#wrap(operation, policyId, error);
    }
  }

  #wrap(operation: string, policyId: string | undefined, error: unknown): PolicySyncError {
    const name = (error as { name?: unknown } | undefined)?.name;
    const message = (error as { message?: unknown } | undefined)?.message;
    const what = policyId === undefined ? `policy store ${this.#storeId}` : `policy ${policyId} of policy store ${this.#storeId}`;
    const why = `${typeof name === "string" ? name : "Error"}: ${typeof message === "string" ? message : String(error)}`;
    const hint =
      name === "ResourceNotFoundException" && policyId !== undefined ? " (it was deleted during the sync: the next sync will see the store without it)" : "";
    return new PolicySyncError(`${operation} failed for ${what}: ${why}${hint}`, {
      policyStoreId: this.#storeId,
      operation,
      ...(policyId !== undefined ? { policyId } : {}),
      cause: error,
    });
  }

  #closedError(): PolicySyncError {
    return new PolicySyncError(`the sync of policy store ${this.#storeId} was closed`, { policyStoreId: this.#storeId });
  }
}

/** A policy's version as the service dates it; undefined when it gives no dates (then it is always read). */
function stampOf(created: Date | undefined, updated: Date | undefined): string | undefined {
  const c = created?.getTime();
  const u = updated?.getTime();
  return c === undefined || u === undefined || Number.isNaN(c) || Number.isNaN(u) ? undefined : `${c}/${u}`;
}

/** A statement longer than this is refused before it is parsed: far more than a policy a person can review holds. */
const MAX_STATEMENT_CHARS = 100_000;

function templateLinkedProblem(storeId: string, policyId: string, templateId: string | undefined): PolicyProblem {
  return {
    source: `avp:${storeId}/${policyId}`,
    message:
      `policy ${policyId} is template-linked${templateId ? ` (template ${templateId})` : ""}: policy templates are not supported. ` +
      "Write it as a static policy; the store is not loaded, since deciding without it could allow what it forbids",
  };
}

/**
 * The statement, named so that decisions give its `@id` or else its policy id: without an `@id`, one
 * is put before it on its first line (problems are moved back to the statement's own columns).
 */
function nameStatement(policy: StorePolicy): { text: string; name?: string; prefix: number; problem?: string } {
  const { policyId, statement } = policy;
  const parts = wasm.policySetTextToParts(statement);
  // A statement that does not parse is loaded as is: the engine reports where it breaks.
  if (parts.type !== "success") return { text: statement, prefix: 0 };
  if (parts.policy_templates.length > 0) {
    return { text: statement, prefix: 0, problem: `policy ${policyId} is a template (it uses ?principal or ?resource): templates are not supported` };
  }
  if (parts.policies.length !== 1) {
    return { text: statement, prefix: 0, problem: `policy ${policyId} holds ${parts.policies.length} Cedar policies: a Verified Permissions policy is exactly one` };
  }
  const json = wasm.policyToJson(parts.policies[0]!);
  const id = json.type === "success" ? json.json.annotations?.["id"] : undefined;
  if (id !== undefined) return { text: statement, name: id, prefix: 0 };
  const prefix = `@id(${JSON.stringify(policyId)}) `;
  return { text: prefix + statement, name: policyId, prefix: prefix.length };
}

/** Problems on a statement's first line, moved back by the `@id` put before it. */
function relocate(error: PolicyLoadError, prefixes: ReadonlyMap<string, number>): PolicyLoadError {
  if (prefixes.size === 0) return error;
  const problems = error.problems.map((problem) => {
    const prefix = prefixes.get(problem.source);
    if (prefix === undefined || problem.line !== 1 || problem.column === undefined) return problem;
    return { ...problem, column: Math.max(1, problem.column - prefix) };
  });
  const moved = new PolicyLoadError(problems);
  return moved;
}

/**
 * The store's schema (Cedar JSON, as Verified Permissions keeps it) as Cedar text, as `reload`
 * takes it; or why it cannot be used. It must describe every action bedrock-warden decides, in the
 * same groups as the shipped schema: an action missing from the store's schema (or outside its
 * group) would make `action in Bedrock::Action::"ModelInvocation"` miss it, and a `forbid` written
 * that way would silently stop applying.
 */
function storeSchemaText(schemaJson: string): { text?: string; problem?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(schemaJson);
  } catch (error) {
    return { problem: `the policy store's schema is not JSON: ${(error as Error).message}` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { problem: "the policy store's schema is not a Cedar JSON schema (an object of namespaces)" };
  const text = wasm.schemaToText(parsed as cedar.SchemaJson<string>);
  if (text.type !== "success") return { problem: `the policy store's schema does not parse: ${text.errors.map((e) => e.message).join("; ")}` };
  const missing = missingShippedActions(parsed as cedar.SchemaJson<string>);
  if (missing.length > 0) {
    return {
      problem:
        `the policy store's schema does not describe the calls bedrock-warden decides: ${missing.slice(0, 5).join("; ")}${missing.length > 5 ? `; and ${missing.length - 5} more` : ""}. ` +
        'Start from schema/bedrock-warden.cedarschema (as JSON) and add to it, or use schema: "shipped"',
    };
  }
  return { text: text.text };
}

let shippedActions: Map<string, Set<string>> | undefined;

function missingShippedActions(store: cedar.SchemaJson<string>): string[] {
  shippedActions ??= actionGroups(shippedSchemaJson());
  const storeActions = actionGroups(store);
  const missing: string[] = [];
  for (const [action, groups] of shippedActions) {
    const present = storeActions.get(action);
    if (!present) {
      missing.push(`action ${action} is missing`);
      continue;
    }
    for (const group of groups) if (!present.has(group)) missing.push(`action ${action} is not in ${group}`);
  }
  return missing;
}

function shippedSchemaJson(): cedar.SchemaJson<string> {
  const json = wasm.schemaToJson(shippedSchema());
  if (json.type !== "success") throw new Error("bedrock-warden: the shipped schema does not parse");
  return json.json;
}

/** Every action (`Namespace::Action::"id"`) and the groups it is directly a member of. */
function actionGroups(schema: cedar.SchemaJson<string>): Map<string, Set<string>> {
  const result = new Map<string, Set<string>>();
  for (const [namespace, definition] of Object.entries(schema)) {
    const own = namespace ? `${namespace}::Action` : "Action";
    const actions = (definition as { actions?: Record<string, { memberOf?: { id: string; type?: string }[] | null }> } | undefined)?.actions ?? {};
    for (const [id, action] of Object.entries(actions)) {
      const groups = new Set<string>();
      for (const parent of action?.memberOf ?? []) {
        const type = parent.type === undefined || parent.type === "Action" ? own : parent.type;
        groups.add(`${type}::${JSON.stringify(parent.id)}`);
      }
      result.set(`${own}::${JSON.stringify(id)}`, groups);
    }
  }
  return result;
}

/**
 * Verified Permissions answers ResourceNotFoundException both for a missing store and for a store
 * without a schema. ListPolicies has just found the store, so only a store named as the missing
 * resource means something else.
 */
function isSchemaMissing(error: unknown): boolean {
  const resourceType = (error as { resourceType?: unknown } | undefined)?.resourceType;
  return resourceType !== "POLICY_STORE" && resourceType !== "POLICY_STORE_ALIAS";
}

function fingerprintOf(schema: string | undefined, documents: readonly PolicyDocument[]): string {
  const hash = createHash("sha256").update(schema ?? "(shipped)").update("\0");
  for (const { source, text } of documents) hash.update(source).update("\0").update(text).update("\0");
  return hash.digest("hex");
}

function defaultOnError(storeId: string): (error: Error, keptVersion: string) => void {
  return (error, keptVersion) =>
    process.emitWarning(`bedrock-warden: policy store ${storeId} was not synced; ${keptVersion} keeps deciding. ${error.message}`, "BedrockWardenWarning");
}

function callSafely(name: string, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    process.emitWarning(`bedrock-warden: the Verified Permissions sync's ${name} listener threw: ${(error as Error)?.message ?? String(error)}`, "BedrockWardenWarning");
  }
}
