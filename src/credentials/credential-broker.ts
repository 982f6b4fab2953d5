/**
 * Just-in-time AWS credentials per (workload identity, invocation path): temporary STS credentials
 * named after the workload (role session name, `SourceIdentity`, session tags), restricted by an
 * inline session policy to what that path may call, for the shortest duration, cached per pair
 * until shortly before they expire, never shared across identities or paths, and dropped when the
 * tasks that asked for them end.
 * @module
 */
import { createHash } from "node:crypto";
import type { AssumeRoleCommandOutput, STSClient, STSClientConfig } from "@aws-sdk/client-sts";
import type { AwsCredentialIdentity } from "@smithy/types";
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { authenticationOf, presentedTokenOf } from "../identity/authentication.js";
import { classifyCredentials, type CredentialFacts } from "./credential-facts.js";
import type { TaskScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CedarEngine } from "../policy/cedar-engine.js";
import { describeZodError } from "../validation.js";
import { derivePathGrants, explicitPathGrants, sessionPolicyDocument, SessionPolicyError, type PathScope } from "./session-policy.js";

/**
 * Options of {@link createCredentialBroker}.
 *
 * @example
 * ```ts
 * const options: CredentialBrokerOptions = {
 *   roleArn: "arn:aws:iam::123456789012:role/bedrock-workloads",
 *   sts: { region: "us-east-1" },
 *   durationSeconds: 900,
 * };
 * ```
 */
export interface CredentialBrokerOptions {
  /** The role to assume: one ARN for every workload, or one chosen per identity and path. */
  readonly roleArn: string | ((request: { readonly identity: WorkloadIdentity; readonly task: string }) => string);
  /**
   * How credentials are obtained: `"assume-role"` (default) calls AssumeRole with the broker's own
   * credentials (the `sts` client's); `"web-identity"` calls AssumeRoleWithWebIdentity with the
   * workload's own verified token (from `createTokenVerifier`), so the broker needs no AWS credentials at all.
   */
  readonly exchange?: "assume-role" | "web-identity";
  /** The STS client to call, or its configuration (`region`, `endpoint`, `credentials`). */
  readonly sts: STSClient | STSClientConfig;
  /** How long credentials live: 900 (STS's minimum, the default) to 43,200 seconds. */
  readonly durationSeconds?: number;
  /** Credentials closer than this to their expiry are replaced before use (default 120 s). */
  readonly refreshBeforeExpirySeconds?: number;
  /**
   * What each invocation path may call, when the Cedar policies cannot say (their resource scope
   * names no model) or should say less. A path not listed gets a session policy derived from the
   * policies that can permit its workload.
   */
  readonly paths?: Readonly<Record<string, PathScope>>;
  /** Session tags added to `workload`, `path` and `environment` (AssumeRole only). */
  readonly sessionTags?: Readonly<Record<string, string>>;
}

/**
 * Issues and caches credentials per identity and invocation path. Give it to
 * `createGovernance({ credentialBroker })`: every governed call is then signed with the
 * credentials of its own identity and path.
 *
 * @example
 * ```ts
 * const broker = createCredentialBroker({ roleArn, sts: { region: "us-east-1" } });
 * const governance = createGovernance({ environment: "production", policies, credentialBroker: broker });
 * await runTask(invoiceAgent, "reconcile-invoices", () => bedrock.converse(input));
 * console.log(broker.cachedPairs()); // 0: the task's credentials were dropped when it ended
 * ```
 */
export interface CredentialBroker {
  /** How many (identity, path) pairs hold credentials right now. */
  cachedPairs(): number;
  /**
   * Whether the pair holds credentials right now (under the governance the broker serves: a
   * broker shared by two governances keeps their credentials apart).
   */
  holds(identity: WorkloadIdentity, task: string): boolean;
  /** Drops every cached credential (e.g. on shutdown or after a suspected leak). */
  clear(): void;
  /** How many times credentials were issued (STS calls that succeeded), for tests and metrics. */
  readonly issued: number;
  /** @internal What a call's credentials will be, known before it is decided (nothing is issued). */
  [PLAN](request: BrokerRequest): CredentialFacts;
  /** @internal The credentials of one pair: cached, refreshed before expiry, or issued now. */
  [ISSUE](request: BrokerRequest): Promise<AwsCredentialIdentity>;
}

/** @internal Keys of the broker's call-path methods: reachable by the governance middleware, not by anyone holding a governance. */
export const PLAN: unique symbol = Symbol("bedrock-warden.broker.plan");
/** @internal */
export const ISSUE: unique symbol = Symbol("bedrock-warden.broker.issue");

/** @internal What the broker is asked for. */
export interface BrokerRequest {
  readonly identity: WorkloadIdentity;
  /** The invocation path; `DEFAULT_PATH` outside runTask. */
  readonly task: string;
  /** The task asking, when the call runs in one: the pair's credentials live as long as its tasks. */
  readonly taskScope: TaskScope | undefined;
  readonly engine: CedarEngine;
  readonly environment: string;
}

// Credentials this close to their expiry are never used, even when STS cannot replace them.
const LAST_USABLE_MS = 30_000;

// Pairs are kept while their credentials live; past this many, dead ones are swept out.
const PRUNE_ABOVE = 1024;


const TAG_VALUE = /[^\p{L}\p{Z}\p{N}_.:/=+\-@]/u;
const TAG_VALUE_ALL = /[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu;
const SESSION_NAME = /[^\w+=,.@-]/g;

const pathScopeSchema = z
  .object({
    operations: z.array(z.string()).min(1, "must name at least one operation, e.g. [\"Converse\"]"),
    models: z.array(z.string().min(1)).optional(),
    guardrails: z.array(z.string().min(1)).optional(),
  })
  .strict();

const optionsSchema = z
  .object({
    roleArn: z.union([
      z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
      z.custom<(r: unknown) => string>((v) => typeof v === "function", { message: "must be a role ARN or a function returning one" }),
    ]),
    exchange: z.enum(["assume-role", "web-identity"], { error: 'must be "assume-role" or "web-identity"' }).optional(),
    sts: z.custom<object>((v) => typeof v === "object" && v !== null, { message: "must be an STSClient or its configuration ({ region, endpoint, credentials })" }),
    durationSeconds: z.number().int("must be whole seconds").min(900, "must be at least 900 (STS's minimum)").max(43_200, "must be at most 43,200").optional(),
    refreshBeforeExpirySeconds: z.number().int().min(10, "must be at least 10 seconds").max(3600, "must be at most 3600 seconds").optional(),
    paths: z.record(z.string().min(1), pathScopeSchema).optional(),
    sessionTags: z.record(z.string().min(1).max(128), z.string().max(256)).optional(),
  })
  .strict();

interface PairEntry {
  credentials: AwsCredentialIdentity | undefined;
  pending: Promise<AwsCredentialIdentity> | undefined;
  /** Tasks using this pair; when the last ends, the credentials are dropped. */
  readonly tasks: Set<TaskScope>;
  /** When a refresh last failed: STS is not asked again for a few seconds while the current credentials last. */
  failedAt: number;
}

// After STS fails to refresh, calls keep the current (still valid) credentials without asking STS
// again for this long: a failing STS is not hammered by every call.
const REFRESH_BACKOFF_MS = 5_000;

/**
 * Creates a credential broker.
 *
 * @example
 * ```ts
 * import { createCredentialBroker, createGovernance } from "bedrock-warden";
 *
 * const credentialBroker = createCredentialBroker({
 *   roleArn: "arn:aws:iam::123456789012:role/bedrock-workloads",
 *   sts: { region: "us-east-1" },
 *   paths: { "summarize-ticket": { operations: ["Converse"], models: ["amazon.nova-lite-v1:0"] } },
 * });
 * const governance = createGovernance({ environment: "production", policies, credentialBroker });
 * ```
 * @throws {@link ConfigurationError} for a malformed option.
 */
export function createCredentialBroker(options: CredentialBrokerOptions): CredentialBroker {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new ConfigurationError(`Invalid credential broker options: ${describeZodError(parsed.error, "broker", optionsSchema)}`);
  for (const [path, scope] of Object.entries(options.paths ?? {})) {
    try {
      explicitPathGrants(scope);
    } catch (error) {
      throw new ConfigurationError(`Invalid credential broker options: paths["${path}"]: ${(error as Error).message}`);
    }
  }
  if ((options.refreshBeforeExpirySeconds ?? 120) >= (options.durationSeconds ?? 900)) {
    throw new ConfigurationError(
      "Invalid credential broker options: refreshBeforeExpirySeconds must be less than durationSeconds (otherwise every call would ask STS for new credentials)",
    );
  }
  for (const [key, value] of Object.entries(options.sessionTags ?? {})) {
    if (["workload", "path", "environment"].includes(key)) throw new ConfigurationError(`Invalid credential broker options: sessionTags.${key} is set by the broker`);
    if (TAG_VALUE.test(value)) throw new ConfigurationError(`Invalid credential broker options: sessionTags.${key} has characters STS refuses in a tag value`);
  }
  return new StsCredentialBroker(options);
}

class StsCredentialBroker implements CredentialBroker {
  readonly #options: CredentialBrokerOptions;
  readonly #pairs = new Map<string, PairEntry>();
  readonly #identityKeys = new WeakMap<WorkloadIdentity, string>();
  #client: Promise<STSClient> | undefined;
  #issued = 0;

  constructor(options: CredentialBrokerOptions) {
    this.#options = options;
  }

  get issued(): number {
    return this.#issued;
  }

  cachedPairs(): number {
    let count = 0;
    for (const entry of this.#pairs.values()) if (entry.credentials) count++;
    return count;
  }

  holds(identity: WorkloadIdentity, task: string): boolean {
    for (const [key, entry] of this.#pairs) {
      if (entry.credentials !== undefined && key.startsWith(this.#identityKey(identity)) && key.endsWith(`\u0000${task}`)) return true;
    }
    return false;
  }

  clear(): void {
    this.#pairs.clear();
  }

  [PLAN](request: BrokerRequest): CredentialFacts {
    const current = this.#pairs.get(this.#pairKey(request))?.credentials;
    const now = Date.now();
    if (current && expiresAtMs(current) - now > this.#refreshBeforeMs) return classifyCredentials(current, true);
    // What STS will issue: temporary credentials for this pair, with the configured duration.
    return Object.freeze({ kind: "temporary", brokered: true, expiresAt: new Date(now + (this.#options.durationSeconds ?? 900) * 1000) });
  }

  async [ISSUE](request: BrokerRequest): Promise<AwsCredentialIdentity> {
    // The task may have ended while the call was being decided (the plan saw it running).
    if (request.taskScope?.ended) throw taskEnded(request.task);
    const key = this.#pairKey(request);
    let entry = this.#pairs.get(key);
    if (!entry) {
      if (this.#pairs.size >= PRUNE_ABOVE) this.#prune();
      entry = { credentials: undefined, pending: undefined, tasks: new Set(), failedAt: -Infinity };
      this.#pairs.set(key, entry);
    }
    if (request.taskScope && !entry.tasks.has(request.taskScope)) {
      const pair = entry;
      pair.tasks.add(request.taskScope);
      request.taskScope.onEnd(() => {
        pair.tasks.delete(request.taskScope!);
        // The last task on this pair ended: its credentials leave the process with it.
        if (pair.tasks.size === 0 && this.#pairs.get(key) === pair) this.#pairs.delete(key);
      });
    }
    const now = Date.now();
    const current = entry.credentials;
    if (current && expiresAtMs(current) - now > this.#refreshBeforeMs) return current;
    const usable = (credentials: AwsCredentialIdentity | undefined) => credentials !== undefined && expiresAtMs(credentials) - Date.now() > LAST_USABLE_MS;
    if (usable(current) && now - entry.failedAt < REFRESH_BACKOFF_MS) return current!;
    const pair = entry;
    pair.pending ??= this.#issue(request).finally(() => {
      pair.pending = undefined;
    });
    try {
      const fresh = await pair.pending;
      // A task that ended while STS answered has dropped the pair: its credentials are not kept,
      // nor handed to the call.
      if (this.#pairs.get(key) === pair) pair.credentials = fresh;
      if (request.taskScope?.ended) throw taskEnded(request.task);
      return fresh;
    } catch (error) {
      pair.failedAt = Date.now();
      // STS failing during a refresh leaves the current credentials in use while they are still
      // well within their lifetime; expired or nearly expired ones are never used.
      if (usable(current)) return current!;
      throw error;
    }
  }

  get #refreshBeforeMs(): number {
    return (this.#options.refreshBeforeExpirySeconds ?? 120) * 1000;
  }

  async #issue(request: BrokerRequest): Promise<AwsCredentialIdentity> {
    const { identity, task, engine, environment } = request;
    const describe = `${identity.id} on path "${task}"`;
    // Own keys only: a task named "constructor" or "__proto__" (or a polluted Object.prototype) names no path.
    const paths = this.#options.paths;
    const explicit = paths !== undefined && Object.hasOwn(paths, task) ? paths[task] : undefined;
    let policy: string;
    try {
      policy = sessionPolicyDocument(explicit ? explicitPathGrants(explicit) : derivePathGrants(engine, identity), describe);
    } catch (error) {
      if (error instanceof SessionPolicyError) throw new BrokerError(`no session policy for ${describe}: ${error.message}`, { cause: error });
      throw error;
    }
    const roleArn = typeof this.#options.roleArn === "function" ? this.#options.roleArn({ identity, task }) : this.#options.roleArn;
    const sessionName = attributionName(`${task}.${withoutScheme(identity.id)}`, `${task}\u0000${identity.id}`);
    const durationSeconds = this.#options.durationSeconds ?? 900;
    const sts = await this.#sts();
    const commands = await import("@aws-sdk/client-sts");
    let output: Pick<AssumeRoleCommandOutput, "Credentials">;
    try {
      if ((this.#options.exchange ?? "assume-role") === "web-identity") {
        const token = presentedTokenOf(identity);
        if (!token) {
          throw new BrokerError(
            `${identity.id} has no verified token to exchange (exchange "web-identity"): obtain the identity from createTokenVerifier or an identity provider`,
          );
        }
        if ((authenticationOf(identity)?.delegation.depth ?? 0) > 0) {
          // STS would see the token's subject (whoever the chain acts for), not the agent acting.
          throw new BrokerError(
            `${identity.id} acts through a delegated token, which AssumeRoleWithWebIdentity would attribute to its subject: use exchange "assume-role" for delegated identities`,
          );
        }
        output = await sts.send(
          new commands.AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: sessionName, WebIdentityToken: token, DurationSeconds: durationSeconds, Policy: policy }),
        );
      } else {
        const tags = { workload: boundedTagValue(identity.id), path: boundedTagValue(task), environment: boundedTagValue(environment), ...this.#options.sessionTags };
        output = await sts.send(
          new commands.AssumeRoleCommand({
            RoleArn: roleArn,
            RoleSessionName: sessionName,
            SourceIdentity: attributionName(withoutScheme(identity.id), identity.id),
            DurationSeconds: durationSeconds,
            Policy: policy,
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        );
      }
    } catch (error) {
      if (error instanceof BrokerError) throw error;
      // The STS client has already retried what it retries (throttling, transient errors).
      const name = (error as { name?: string })?.name ?? "Error";
      const message = (error as { message?: string })?.message ?? String(error);
      throw new BrokerError(`STS refused credentials for ${describe} (role ${roleArn}): ${name}: ${message}`, { cause: error });
    }
    const issued = output.Credentials;
    if (!issued?.AccessKeyId || !issued.SecretAccessKey || !issued.SessionToken || !(issued.Expiration instanceof Date)) {
      throw new BrokerError(`STS answered without complete credentials for ${describe}`);
    }
    if (issued.Expiration.getTime() <= Date.now()) throw new BrokerError(`STS issued credentials for ${describe} that have already expired`);
    this.#issued++;
    return Object.freeze({
      accessKeyId: issued.AccessKeyId,
      secretAccessKey: issued.SecretAccessKey,
      sessionToken: issued.SessionToken,
      expiration: issued.Expiration,
    });
  }

  /** Forgets pairs no task uses whose credentials expired or were never issued (calls outside runTask leave them). */
  #prune(): void {
    const now = Date.now();
    for (const [key, entry] of this.#pairs) {
      if (entry.tasks.size === 0 && entry.pending === undefined && (!entry.credentials || expiresAtMs(entry.credentials) <= now)) this.#pairs.delete(key);
    }
  }

  #sts(): Promise<STSClient> {
    this.#client ??= (async () => {
      const sts = this.#options.sts;
      if (typeof (sts as STSClient).send === "function") return sts as STSClient;
      const { STSClient: Client } = await import("@aws-sdk/client-sts");
      return new Client(sts as STSClientConfig);
    })();
    return this.#client;
  }

  /**
   * One key per identity (its content and how it was proven: an identity merely declared in code
   * never gets what was issued to a verified one with the same id, nor one delegated through other
   * actors), governance (policy set and environment: they shape the session policy and tags) and path.
   */
  #pairKey(request: BrokerRequest): string {
    return `${this.#identityKey(request.identity)}\u0000${request.engine.version}\u0000${request.environment}\u0000${request.task}`;
  }

  #identityKey(identity: WorkloadIdentity): string {
    let key = this.#identityKeys.get(identity);
    if (key === undefined) {
      const proof = authenticationOf(identity);
      const chain = proof?.delegation.actors.map((actor) => [actor.subject, actor.issuer ?? ""]);
      key = JSON.stringify([identity, proof ? [proof.method, proof.issuer, proof.subject, chain] : "declared"]);
      this.#identityKeys.set(identity, key);
    }
    return key;
  }
}

/** Credentials could not be issued: the call is denied, and this says why. */
export class BrokerError extends Error {
  override readonly name = "BrokerError";
}

/** How {@link attributionName} and {@link boundedTagValue} end a name they had to alter: "." and 10 hex digits. */
const HASH_SUFFIX = /\.[0-9a-f]{10}$/;

/** The refusal for a call of a task that has ended: its credentials left the process with it. */
export function taskEnded(task: string): Error {
  return new Error(`the task "${task}" has ended, and its credentials with it: make the call inside the task`);
}

function expiresAtMs(credentials: AwsCredentialIdentity): number {
  return credentials.expiration?.getTime() ?? 0;
}

/**
 * A role session name or SourceIdentity (2-64 of `[\w+=,.@-]`) naming the workload: readable, and
 * unique — a hash of the full, unaltered name is appended whenever characters had to be replaced,
 * dropped or cut, so two workloads never share one. A name that already ends like such a hash is
 * hashed too: otherwise an id chosen to read as another's cleaned name and hash would be taken as
 * that workload in CloudTrail and in `aws:SourceIdentity` conditions.
 */
function attributionName(readable: string, full: string): string {
  const cleaned = readable.replace(SESSION_NAME, "-");
  if (cleaned === full && cleaned.length >= 2 && cleaned.length <= 64 && !HASH_SUFFIX.test(cleaned)) return cleaned;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 10);
  return `${cleaned.slice(0, 64 - hash.length - 1)}.${hash}`;
}

/** `spiffe://acme.example/agents/invoice` → `acme.example/agents/invoice`: the scheme says nothing in a session name. */
function withoutScheme(id: string): string {
  return id.replace(/^[a-z][a-z0-9+.-]*:\/\//, "");
}

/**
 * A session tag value STS accepts; when characters had to be replaced or cut (or the value already
 * ends like such a hash), a hash of the original keeps it unique.
 */
function boundedTagValue(value: string): string {
  const cleaned = value.replace(TAG_VALUE_ALL, "_");
  if (cleaned === value && value.length <= 256 && !HASH_SUFFIX.test(value)) return value;
  const hash = createHash("sha256").update(value).digest("hex").slice(0, 10);
  return `${cleaned.slice(0, 256 - hash.length - 1)}.${hash}`;
}
