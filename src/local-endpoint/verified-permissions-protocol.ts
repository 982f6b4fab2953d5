/**
 * Amazon Verified Permissions' wire protocol, awsJson1_0: every request is `POST /` with the
 * operation in `X-Amz-Target: VerifiedPermissions.<Operation>` and its input as a JSON body
 * (`Content-Type: application/x-amz-json-1.0`); answers are JSON, timestamps ISO 8601 date-times
 * (the model's `@timestampFormat("date-time")`); errors carry their type in `__type` (which the SDK
 * turns into the exception's `name`) with `message` and the error's own members.
 * @module
 */

/** The `X-Amz-Target` prefix of every operation. */
export const TARGET_PREFIX = "VerifiedPermissions.";

/** The content type of requests and answers. */
export const AMZ_JSON = "application/x-amz-json-1.0";

const NAMESPACE = "com.amazonaws.verifiedpermissions";

/**
 * An error as Verified Permissions answers it: the HTTP status the model gives the error, its type
 * and message, and the error's own members (`resourceId`, `resourceType`, `fieldList`...).
 *
 * @example
 * ```ts
 * const missing: AvpError = { status: 404, type: "ResourceNotFoundException", message: "...", members: { resourceId: "p1", resourceType: "POLICY" } };
 * ```
 */
export interface AvpError {
  status: number;
  type: string;
  message: string;
  members?: Record<string, unknown>;
}

/**
 * Builds an {@link AvpError}.
 *
 * @example
 * ```ts
 * return { error: avpError(429, "ThrottlingException", "Rate exceeded") };
 * ```
 */
export function avpError(status: number, type: string, message: string, members?: Record<string, unknown>): AvpError {
  return { status, type, message, ...(members ? { members } : {}) };
}

/**
 * The body of an error answer: `__type` names the shape in the service's namespace, as the
 * service sends it (the SDK keeps what follows the `#`).
 *
 * @example
 * ```ts
 * renderError(avpError(404, "ResourceNotFoundException", "Policy not found"));
 * // '{"__type":"com.amazonaws.verifiedpermissions#ResourceNotFoundException","message":"Policy not found"}'
 * ```
 */
export function renderError(error: AvpError): string {
  return JSON.stringify({ __type: `${NAMESPACE}#${error.type}`, message: error.message, ...error.members });
}

/**
 * `ResourceNotFoundException` for a resource of the given type.
 *
 * @example
 * ```ts
 * notFound("POLICY", "SPEXAMPLEabcdefg111111");
 * ```
 */
export function notFound(resourceType: "POLICY_STORE" | "POLICY" | "SCHEMA", resourceId: string): AvpError {
  const what = { POLICY_STORE: "Policy store", POLICY: "Policy", SCHEMA: "Schema" }[resourceType];
  return avpError(404, "ResourceNotFoundException", `${what} ${resourceId} not found`, { resourceId, resourceType });
}

/**
 * `ValidationException` with AWS's wording and the `fieldList` the model gives it.
 *
 * @example
 * ```ts
 * validationError([{ path: "maxResults", message: "Member must have value less than or equal to 50" }]);
 * ```
 */
export function validationError(fields: readonly { path: string; message: string }[]): AvpError {
  const count = fields.length;
  const detail = fields.map((f) => `Value at '${f.path}' failed to satisfy constraint: ${f.message}`).join("; ");
  return avpError(400, "ValidationException", `${count} validation error${count === 1 ? "" : "s"} detected: ${detail}`, { fieldList: fields });
}

/**
 * An ISO 8601 date-time, as the model's timestamps are serialized.
 *
 * @example
 * ```ts
 * dateTime(new Date(0)); // "1970-01-01T00:00:00.000Z"
 * ```
 */
export function dateTime(date: Date): string {
  return date.toISOString();
}

/**
 * A pagination token: opaque to the client, the last policy id of the page here (so that a policy
 * added or removed between pages does not shift the next one).
 *
 * @example
 * ```ts
 * const token = encodeToken("SPEXAMPLE1"); decodeToken(token); // "SPEXAMPLE1"
 * ```
 */
export function encodeToken(after: string): string {
  return Buffer.from(JSON.stringify({ after }), "utf8").toString("base64url");
}

/** The policy id a token continues after, or undefined for a token this endpoint did not issue. */
export function decodeToken(token: string): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { after?: unknown };
    return typeof parsed.after === "string" ? parsed.after : undefined;
  } catch {
    return undefined;
  }
}
