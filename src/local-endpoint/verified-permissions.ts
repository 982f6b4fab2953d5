/**
 * A local Amazon Verified Permissions endpoint: the policy-store reads a policy sync makes
 * (ListPolicies with pagination, GetPolicy, GetSchema), in the service's awsJson1_0 protocol with
 * SigV4 verified for real, so that the unmodified `@aws-sdk/client-verifiedpermissions` client —
 * and `syncFromVerifiedPermissions` through it — runs offline. Stores are changed by the test
 * (`putPolicy`, `deletePolicy`, `setSchema`), faults injected with `failNext`.
 * @module
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { wasm } from "../policy/cedar-wasm.js";
import { policyTextProblems } from "../policy/policy-text-limits.js";
import { describeZodError } from "../validation.js";
import { Authenticator, LOCAL_BEDROCK_CREDENTIALS } from "./auth.js";
import { parseQuery } from "./routes.js";
import { DualProtocolListener, type Exchange } from "./transport.js";
import type { LocalCredentials, SignatureCheck } from "./types.js";
import {
  AMZ_JSON,
  TARGET_PREFIX,
  avpError,
  dateTime,
  decodeToken,
  encodeToken,
  notFound,
  renderError,
  validationError,
  type AvpError,
} from "./verified-permissions-protocol.js";

/**
 * An entity as Verified Permissions names one (`EntityIdentifier`).
 *
 * @example
 * ```ts
 * const principal: AvpEntity = { entityType: "Bedrock::Workload", entityId: "spiffe://acme.example/agents/invoice" };
 * ```
 */
export interface AvpEntity {
  entityType: string;
  entityId: string;
}

/**
 * A policy in a local store: a static policy (one Cedar policy as text; it is stored as given, even
 * when it does not parse, as a store with validation off would keep it), or a template-linked one.
 *
 * @example
 * ```ts
 * const policies: Record<string, LocalAvpPolicy> = {
 *   "billing-haiku": { statement: 'permit (principal in Bedrock::Group::"billing", action, resource);', description: "billing may chat" },
 *   "linked-1": { templateLinked: { policyTemplateId: "PTEXAMPLE", principal: { entityType: "Bedrock::Workload", entityId: "agent" } } },
 * };
 * ```
 */
export type LocalAvpPolicy =
  | { statement: string; description?: string }
  | { templateLinked: { policyTemplateId: string; principal?: AvpEntity; resource?: AvpEntity } };

/**
 * A local policy store: its policies by policy id, and its schema (Cedar JSON text), if it has one.
 *
 * @example
 * ```ts
 * const store: LocalPolicyStore = { policies: { p1: { statement: "permit (principal, action, resource);" } }, schema: JSON.stringify(schemaJson) };
 * ```
 */
export interface LocalPolicyStore {
  policies?: Record<string, LocalAvpPolicy>;
  schema?: string;
}

/**
 * Options of {@link startLocalVerifiedPermissions}.
 *
 * @example
 * ```ts
 * const options: LocalVerifiedPermissionsOptions = { policyStores: { PSEXAMPLEabcdefg111111: { policies: {} } }, region: "eu-west-1" };
 * ```
 */
export interface LocalVerifiedPermissionsOptions {
  /** The policy stores, by policy store id. */
  policyStores: Record<string, LocalPolicyStore>;
  /** The keys requests may be signed with (default: `LOCAL_BEDROCK_CREDENTIALS`). */
  credentials?: LocalCredentials[];
  /** The region signatures must be scoped to (default `us-east-1`). */
  region?: string;
  /** The port on 127.0.0.1 (default: any free port). */
  port?: number;
}

/**
 * A fault to answer the next requests with, instead of serving them.
 *
 * @example
 * ```ts
 * avp.failNext({ type: "ThrottlingException", status: 429, times: 2 }); // the SDK retries both
 * ```
 */
export interface VerifiedPermissionsFailure {
  /** The error type, e.g. `ThrottlingException`, `InternalServerException`, `AccessDeniedException`. */
  type: string;
  /** The HTTP status, e.g. 429 or 500. */
  status: number;
  message?: string;
  /** How many of the following requests fail this way; default 1; 0 cancels a pending failure. */
  times?: number;
}

/**
 * A request the local endpoint received, as recorded in {@link LocalVerifiedPermissions.requests}.
 *
 * @example
 * ```ts
 * assert.deepEqual(avp.requests.map((r) => r.operation), ["ListPolicies", "GetPolicy", "GetSchema"]);
 * ```
 */
export interface VerifiedPermissionsReceivedRequest {
  index: number;
  /** The operation named by `X-Amz-Target` (`ListPolicies`, `GetPolicy`, `GetSchema` are answered), when it named one. */
  operation?: string;
  /** The parsed JSON input. */
  input?: unknown;
  /** The outcome of the signature check (absent for requests refused before it, e.g. an injected fault). */
  signature?: SignatureCheck;
  httpVersion: string;
  receivedAt: Date;
  /** The HTTP status answered. */
  status?: number;
  /** The error type answered, for an error. */
  errorType?: string;
}

/**
 * A running local Verified Permissions endpoint, from {@link startLocalVerifiedPermissions}.
 *
 * @example
 * ```ts
 * avp.putPolicy("PSEXAMPLEabcdefg111111", "p1", { statement: "forbid (principal, action, resource);" });
 * avp.setSchema("PSEXAMPLEabcdefg111111", undefined); // GetSchema now answers ResourceNotFoundException
 * ```
 */
export interface LocalVerifiedPermissions {
  /** `http://127.0.0.1:<port>`: the client's `endpoint`. */
  readonly url: string;
  readonly region: string;
  /** The first accepted key pair, to sign with. */
  readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Every request received, in order. */
  readonly requests: VerifiedPermissionsReceivedRequest[];
  /** Adds or replaces a policy (creating the store if needed). */
  putPolicy(policyStoreId: string, policyId: string, policy: LocalAvpPolicy): void;
  /** Removes a policy; throws a `RangeError` when there is none. */
  deletePolicy(policyStoreId: string, policyId: string): void;
  /** Sets the store's schema (Cedar JSON text), or removes it with `undefined`. */
  setSchema(policyStoreId: string, schema: string | undefined): void;
  /** Answers the next request(s) with an error instead. */
  failNext(failure: VerifiedPermissionsFailure): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/**
 * Starts a local Verified Permissions endpoint on 127.0.0.1 (HTTP/1.1 and HTTP/2 on one port).
 *
 * @example
 * ```ts
 * import { ListPoliciesCommand, VerifiedPermissionsClient } from "@aws-sdk/client-verifiedpermissions";
 * import { startLocalVerifiedPermissions } from "bedrock-warden/local-endpoint";
 *
 * const avp = await startLocalVerifiedPermissions({
 *   policyStores: { PSEXAMPLEabcdefg111111: { policies: { p1: { statement: "permit (principal, action, resource);" } } } },
 * });
 * const client = new VerifiedPermissionsClient({ endpoint: avp.url, region: avp.region, credentials: { ...avp.credentials } });
 * const { policies } = await client.send(new ListPoliciesCommand({ policyStoreId: "PSEXAMPLEabcdefg111111" }));
 * console.log(policies?.[0]?.policyId); // "p1"
 * client.destroy();
 * await avp.close();
 * ```
 */
export async function startLocalVerifiedPermissions(options: LocalVerifiedPermissionsOptions): Promise<LocalVerifiedPermissions> {
  const server = new LocalVerifiedPermissionsServer(validateOptions(options));
  await server.listen(options.port ?? 0);
  return server;
}

const MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 50;
const ID = /^[a-zA-Z0-9\-/_]{1,200}$/;

const entitySchema = z.object({ entityType: z.string().min(1), entityId: z.string().min(1) }).strict();
const policySchema = z.union(
  [
    z.object({ statement: z.string({ error: "must be Cedar text" }), description: z.string().max(150).optional() }).strict(),
    z
      .object({
        templateLinked: z.object({ policyTemplateId: z.string().min(1), principal: entitySchema.optional(), resource: entitySchema.optional() }).strict(),
      })
      .strict(),
  ],
  { error: "must be { statement, description? } or { templateLinked: { policyTemplateId, principal?, resource? } }" },
);
const storeSchema = z
  .object({
    policies: z.record(z.string().regex(ID, "policy ids are 1-200 characters of letters, digits, - / _"), policySchema).optional(),
    schema: z.string({ error: "must be the schema as Cedar JSON text" }).optional(),
  })
  .strict();
const optionsSchema = z
  .object({
    policyStores: z.record(z.string().regex(ID, "policy store ids are 1-200 characters of letters, digits, - / _"), storeSchema, {
      error: 'is required: the policy stores by id, e.g. { PSEXAMPLEabcdefg111111: { policies: { ... } } }',
    }),
    credentials: z
      .array(z.custom<LocalCredentials>((v) => typeof v === "object" && v !== null, { message: "must be { accessKeyId, secretAccessKey }" }), { error: "must be an array of key pairs" })
      .optional(),
    region: z.string({ error: "must be a string" }).regex(/^[a-z0-9-]+$/, 'must be a region name such as "us-east-1"').optional(),
    port: z.number({ error: "must be a port number" }).int().min(0).max(65535, "must be a port number (0 for any free port)").optional(),
  })
  .strict();

function validateOptions(options: LocalVerifiedPermissionsOptions): LocalVerifiedPermissionsOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new TypeError(`Invalid local Verified Permissions options: ${describeZodError(parsed.error, "options", optionsSchema)}`);
  return options;
}

interface StoredPolicy {
  policy: LocalAvpPolicy;
  createdDate: Date;
  lastUpdatedDate: Date;
}

interface Store {
  createdDate: Date;
  lastWrite: number;
  policies: Map<string, StoredPolicy>;
  schema?: { text: string; createdDate: Date; lastUpdatedDate: Date };
}

type Outcome = { result: Record<string, unknown> } | { error: AvpError };

class LocalVerifiedPermissionsServer implements LocalVerifiedPermissions {
  url = "";
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly requests: VerifiedPermissionsReceivedRequest[] = [];

  readonly #stores = new Map<string, Store>();
  readonly #auth: Authenticator;
  readonly #listener: DualProtocolListener;
  #injected: { error: AvpError; remaining: number } | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: LocalVerifiedPermissionsOptions) {
    this.region = options.region ?? "us-east-1";
    this.#auth = new Authenticator(this.region, "verifiedpermissions");
    const keys = options.credentials ?? [LOCAL_BEDROCK_CREDENTIALS];
    for (const key of keys) this.#auth.addCredentials(key);
    const first: LocalCredentials = keys[0] ?? LOCAL_BEDROCK_CREDENTIALS;
    this.credentials = {
      accessKeyId: first.accessKeyId,
      secretAccessKey: first.secretAccessKey,
      ...(first.sessionToken ? { sessionToken: first.sessionToken } : {}),
    };
    for (const [storeId, store] of Object.entries(options.policyStores)) {
      for (const [policyId, policy] of Object.entries(store.policies ?? {})) this.putPolicy(storeId, policyId, policy);
      this.#store(storeId);
      if (store.schema !== undefined) this.setSchema(storeId, store.schema);
    }
    this.#listener = new DualProtocolListener((exchange) => void this.#serve(exchange).catch(() => undefined));
  }

  async listen(port: number): Promise<void> {
    this.url = `http://127.0.0.1:${await this.#listener.listen(port)}`;
  }

  putPolicy(policyStoreId: string, policyId: string, policy: LocalAvpPolicy): void {
    if (!ID.test(policyStoreId) || !ID.test(policyId)) throw new TypeError("putPolicy: store and policy ids are 1-200 characters of letters, digits, - / _");
    const parsed = policySchema.safeParse(policy);
    if (!parsed.success) throw new TypeError(`putPolicy: the policy ${describeZodError(parsed.error, "", policySchema) || "is malformed"}`);
    const store = this.#store(policyStoreId);
    const existing = store.policies.get(policyId);
    const now = this.#tick(store);
    store.policies.set(policyId, { policy: structuredClone(policy), createdDate: existing?.createdDate ?? now, lastUpdatedDate: now });
  }

  deletePolicy(policyStoreId: string, policyId: string): void {
    if (!this.#stores.get(policyStoreId)?.policies.delete(policyId)) throw new RangeError(`deletePolicy: policy store ${policyStoreId} has no policy ${policyId}`);
  }

  setSchema(policyStoreId: string, schema: string | undefined): void {
    if (schema !== undefined && typeof schema !== "string") throw new TypeError("setSchema: the schema is Cedar JSON text (JSON.stringify it), or undefined to remove it");
    const store = this.#store(policyStoreId);
    if (schema === undefined) {
      delete store.schema;
      return;
    }
    const now = this.#tick(store);
    store.schema = { text: schema, createdDate: store.schema?.createdDate ?? now, lastUpdatedDate: now };
  }

  failNext(failure: VerifiedPermissionsFailure): void {
    const times = failure.times ?? 1;
    if (!failure.type || !Number.isInteger(failure.status) || failure.status < 400 || failure.status > 599) {
      throw new TypeError('failNext needs an error type and an HTTP status from 400 to 599, e.g. { type: "ThrottlingException", status: 429 }');
    }
    if (!Number.isInteger(times) || times < 0) throw new TypeError("failNext: times must be a whole number of requests (0 cancels)");
    const error = avpError(failure.status, failure.type, failure.message ?? `Injected ${failure.type} failure`);
    this.#injected = times > 0 ? { error, remaining: times } : undefined;
  }

  close(): Promise<void> {
    return (this.#closing ??= this.#listener.close());
  }

  /** The time of a write: later than every earlier write to the store, even within one millisecond (clients compare the dates). */
  #tick(store: Store): Date {
    store.lastWrite = Math.max(Date.now(), store.lastWrite + 1);
    return new Date(store.lastWrite);
  }

  #store(policyStoreId: string): Store {
    let store = this.#stores.get(policyStoreId);
    if (!store) {
      store = { createdDate: new Date(), policies: new Map(), lastWrite: 0 };
      this.#stores.set(policyStoreId, store);
    }
    return store;
  }

  async #serve(exchange: Exchange): Promise<void> {
    const record: VerifiedPermissionsReceivedRequest = { index: this.requests.length, httpVersion: exchange.httpVersion, receivedAt: new Date() };
    this.requests.push(record);
    let body: Uint8Array;
    try {
      body = await exchange.readBody();
    } catch {
      return; // the client went away
    }
    let outcome: Outcome;
    try {
      outcome = await this.#process(exchange, body, record);
    } catch (error) {
      // A bug here must still answer, never leave the client waiting.
      outcome = { error: avpError(500, "InternalServerException", `The local Verified Permissions endpoint failed: ${error instanceof Error ? error.message : String(error)}`) };
    }
    const status = "error" in outcome ? outcome.error.status : 200;
    record.status = status;
    const headers: Record<string, string> = { "content-type": AMZ_JSON, "x-amzn-requestid": randomUUID() };
    if ("error" in outcome) {
      record.errorType = outcome.error.type;
      await exchange.send(status, headers, renderError(outcome.error));
    } else {
      await exchange.send(status, headers, JSON.stringify(outcome.result));
    }
  }

  async #process(exchange: Exchange, body: Uint8Array, record: VerifiedPermissionsReceivedRequest): Promise<Outcome> {
    const queryAt = exchange.url.indexOf("?");
    const path = queryAt < 0 ? exchange.url : exchange.url.slice(0, queryAt);
    const target = exchange.headers["x-amz-target"];
    if (target?.startsWith(TARGET_PREFIX)) record.operation = target.slice(TARGET_PREFIX.length);
    if (body.byteLength > MAX_BODY_BYTES) return { error: avpError(413, "RequestEntityTooLargeException", `The request body exceeds ${MAX_BODY_BYTES} bytes`) };

    const injected = this.#takeInjectedFailure();
    if (injected) return { error: injected };

    if (exchange.method !== "POST" || path !== "/") {
      return { error: avpError(404, "UnknownOperationException", `Verified Permissions answers POST / only, not ${exchange.method} ${path}`) };
    }
    const { check, failure } = await this.#auth.authenticate({
      method: exchange.method,
      path,
      query: parseQuery(queryAt < 0 ? "" : exchange.url.slice(queryAt + 1)),
      headers: exchange.headers,
      body,
    });
    record.signature = check;
    if (failure) return { error: avpError(failure.status, failure.type, failure.message) };

    if (!target || record.operation === undefined) return { error: avpError(400, "UnknownOperationException", "X-Amz-Target must name an operation: VerifiedPermissions.<Operation>") };
    const contentType = exchange.headers["content-type"] ?? "";
    if (!contentType.toLowerCase().startsWith(AMZ_JSON)) {
      return { error: avpError(400, "SerializationException", `Content-Type must be ${AMZ_JSON}, not ${contentType || "absent"}`) };
    }
    let input: unknown;
    try {
      input = JSON.parse(Buffer.from(body).toString("utf8") || "{}");
    } catch {
      return { error: avpError(400, "SerializationException", "The request body is not valid JSON") };
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) return { error: avpError(400, "SerializationException", "The request body must be a JSON object") };
    record.input = input;
    const params = input as Record<string, unknown>;
    switch (record.operation) {
      case "ListPolicies":
        return this.#listPolicies(params);
      case "GetPolicy":
        return this.#getPolicy(params);
      case "GetSchema":
        return this.#getSchema(params);
      default:
        return { error: avpError(400, "UnknownOperationException", `The local Verified Permissions endpoint does not answer ${record.operation}`) };
    }
  }

  #takeInjectedFailure(): AvpError | undefined {
    const injected = this.#injected;
    if (!injected) return undefined;
    if (--injected.remaining === 0) this.#injected = undefined;
    return injected.error;
  }

  /** The store the input names, or the error for a missing or unknown one. */
  #storeOf(params: Record<string, unknown>): { storeId: string; store: Store } | { error: AvpError } {
    const storeId = params["policyStoreId"];
    if (typeof storeId !== "string") return { error: validationError([{ path: "policyStoreId", message: "Member must not be null" }]) };
    if (!ID.test(storeId)) return { error: validationError([{ path: "policyStoreId", message: "Member must satisfy regular expression pattern: [a-zA-Z0-9-/_]*" }]) };
    const store = this.#stores.get(storeId);
    return store ? { storeId, store } : { error: notFound("POLICY_STORE", storeId) };
  }

  #listPolicies(params: Record<string, unknown>): Outcome {
    const found = this.#storeOf(params);
    if ("error" in found) return found;
    const { storeId, store } = found;
    const maxResults = params["maxResults"];
    if (maxResults !== undefined && (typeof maxResults !== "number" || !Number.isInteger(maxResults) || maxResults < 1 || maxResults > MAX_PAGE_SIZE)) {
      return { error: validationError([{ path: "maxResults", message: `Member must have value between 1 and ${MAX_PAGE_SIZE}` }]) };
    }
    const nextToken = params["nextToken"];
    let after: string | undefined;
    if (nextToken !== undefined) {
      after = typeof nextToken === "string" ? decodeToken(nextToken) : undefined;
      if (after === undefined) return { error: validationError([{ path: "nextToken", message: "Member must be a token returned by ListPolicies" }]) };
    }
    const filter = params["filter"] as Record<string, unknown> | undefined;
    if (filter !== undefined && (typeof filter !== "object" || filter === null)) return { error: validationError([{ path: "filter", message: "Member must be a structure" }]) };
    for (const unsupported of ["principal", "resource"]) {
      if (filter?.[unsupported] !== undefined) {
        return { error: validationError([{ path: `filter.${unsupported}`, message: "Member is not supported by the local Verified Permissions endpoint" }]) };
      }
    }
    const ids = [...store.policies.keys()].sort().filter((id) => after === undefined || id > after);
    const matching = ids.filter((id) => {
      const { policy } = store.policies.get(id)!;
      const type = "statement" in policy ? "STATIC" : "TEMPLATE_LINKED";
      if (filter?.["policyType"] !== undefined && filter["policyType"] !== type) return false;
      if (filter?.["policyTemplateId"] !== undefined && !("templateLinked" in policy && policy.templateLinked.policyTemplateId === filter["policyTemplateId"])) return false;
      return true;
    });
    const page = matching.slice(0, (maxResults as number | undefined) ?? DEFAULT_PAGE_SIZE);
    const more = matching.length > page.length;
    return {
      result: {
        policies: page.map((id) => renderPolicy(storeId, id, store.policies.get(id)!, false)),
        ...(more ? { nextToken: encodeToken(page[page.length - 1]!) } : {}),
      },
    };
  }

  #getPolicy(params: Record<string, unknown>): Outcome {
    const found = this.#storeOf(params);
    if ("error" in found) return found;
    const policyId = params["policyId"];
    if (typeof policyId !== "string") return { error: validationError([{ path: "policyId", message: "Member must not be null" }]) };
    const stored = found.store.policies.get(policyId);
    if (!stored) return { error: notFound("POLICY", policyId) };
    return { result: renderPolicy(found.storeId, policyId, stored, true) };
  }

  #getSchema(params: Record<string, unknown>): Outcome {
    const found = this.#storeOf(params);
    if ("error" in found) return found;
    const { storeId, store } = found;
    if (!store.schema) return { error: notFound("SCHEMA", storeId) };
    let namespaces: string[] = [];
    try {
      namespaces = Object.keys(JSON.parse(store.schema.text) as Record<string, unknown>);
    } catch {
      // a store schema that is not JSON is served as it is
    }
    return {
      result: {
        policyStoreId: storeId,
        schema: store.schema.text,
        createdDate: dateTime(store.schema.createdDate),
        lastUpdatedDate: dateTime(store.schema.lastUpdatedDate),
        namespaces,
      },
    };
  }
}

/**
 * A `PolicyItem` (ListPolicies) or a `GetPolicyOutput`: the same members, the definition with the
 * statement only in GetPolicy's. The scope members are read from the statement when it parses.
 */
function renderPolicy(storeId: string, policyId: string, stored: StoredPolicy, detail: boolean): Record<string, unknown> {
  const { policy } = stored;
  const dates = { createdDate: dateTime(stored.createdDate), lastUpdatedDate: dateTime(stored.lastUpdatedDate) };
  if ("templateLinked" in policy) {
    const linked = policy.templateLinked;
    return {
      policyStoreId: storeId,
      policyId,
      policyType: "TEMPLATE_LINKED",
      ...(linked.principal ? { principal: linked.principal } : {}),
      ...(linked.resource ? { resource: linked.resource } : {}),
      definition: { templateLinked: { ...linked } },
      ...dates,
    };
  }
  const scope = scopeOf(policy.statement);
  return {
    policyStoreId: storeId,
    policyId,
    policyType: "STATIC",
    ...scope,
    definition: {
      static: {
        ...(policy.description !== undefined ? { description: policy.description } : {}),
        ...(detail ? { statement: policy.statement } : {}),
      },
    },
    ...dates,
  };
}

/** The effect and the principal, resource and actions a statement's scope names, as the service lists them. */
function scopeOf(statement: string): Record<string, unknown> {
  // A statement beyond the policy text limits would reach Cedar's parser past where it survives (the
  // wasm instance is shared with every engine in the process): listed without its scope.
  if (policyTextProblems("statement", statement).length > 0) return {};
  const json = wasm.policyToJson(statement);
  if (json.type !== "success") return {};
  const { effect, principal, action, resource } = json.json as unknown as {
    effect: "permit" | "forbid";
    principal: ScopeConstraint;
    action: ScopeConstraint;
    resource: ScopeConstraint;
  };
  const entity = (constraint: ScopeConstraint): AvpEntity | undefined => {
    const uid = constraint.entity;
    return uid && "type" in uid && "id" in uid ? { entityType: uid.type, entityId: uid.id } : undefined;
  };
  const actions = (action.entity ? [action.entity] : (action.entities ?? [])).filter((a) => "type" in a && "id" in a);
  const p = entity(principal);
  const r = entity(resource);
  return {
    effect: effect === "permit" ? "Permit" : "Forbid",
    ...(p ? { principal: p } : {}),
    ...(r ? { resource: r } : {}),
    ...(actions.length > 0 ? { actions: actions.map((a) => ({ actionType: a.type, actionId: a.id })) } : {}),
  };
}

/** A scope constraint in Cedar's JSON form (`{ op: "==", entity }`, `{ op: "in", entities }`...). */
interface ScopeConstraint {
  op: string;
  entity?: { type: string; id: string };
  entities?: { type: string; id: string }[];
}
