/**
 * STS's wire protocol, awsQuery: requests are `application/x-www-form-urlencoded` parameters
 * (`Action=AssumeRole&Version=2011-06-15&RoleArn=…`), answers are XML in the
 * `https://sts.amazonaws.com/doc/2011-06-15/` namespace, errors are an `ErrorResponse` document
 * whose `Code` the SDK turns into the exception's `name`.
 * @module
 */
/**
 * The API version STS serves; requests naming another one are refused.
 *
 * @example
 * ```ts
 * const body = `Action=AssumeRole&Version=${STS_VERSION}&RoleArn=...`;
 * ```
 */
export const STS_VERSION = "2011-06-15";
const NAMESPACE = `https://sts.amazonaws.com/doc/${STS_VERSION}/`;

/**
 * An error as STS answers it. `code` becomes the SDK exception's `name` (modelled codes are
 * renamed by the SDK: `InvalidIdentityToken` → `InvalidIdentityTokenException`).
 *
 * @example
 * ```ts
 * const denied: StsError = { status: 403, code: "AccessDenied", message: "Not authorized to perform sts:AssumeRoleWithWebIdentity" };
 * ```
 */
export interface StsError {
  status: number;
  code: string;
  message: string;
}

/**
 * Builds an {@link StsError}; a small helper so call sites read like AWS's error tables.
 *
 * @example
 * ```ts
 * return { error: stsError(400, "InvalidAction", "Could not find operation Foo for version 2011-06-15") };
 * ```
 */
export function stsError(status: number, code: string, message: string): StsError {
  return { status, code, message };
}

/**
 * Authentication failures as the Bedrock-style authenticator names them (restJson error types),
 * and the codes awsQuery services such as STS use for the same failures.
 */
const AUTH_CODES: Readonly<Record<string, { status: number; code: string; message?: string }>> = {
  MissingAuthenticationTokenException: { status: 403, code: "MissingAuthenticationToken", message: "Request is missing Authentication Token" },
  IncompleteSignatureException: { status: 400, code: "IncompleteSignature" },
  InvalidSignatureException: { status: 403, code: "SignatureDoesNotMatch" },
  UnrecognizedClientException: { status: 403, code: "InvalidClientTokenId" },
  ExpiredTokenException: { status: 403, code: "ExpiredToken" },
};

/**
 * Translates an authentication failure into the error STS would answer with.
 *
 * @example
 * ```ts
 * authFailureToStsError({ type: "UnrecognizedClientException", message: "The security token included in the request is invalid." });
 * // { status: 403, code: "InvalidClientTokenId", message: "The security token included in the request is invalid." }
 * ```
 */
export function authFailureToStsError(failure: { type: string; message: string }): StsError {
  const mapped = AUTH_CODES[failure.type];
  return mapped ? stsError(mapped.status, mapped.code, mapped.message ?? failure.message) : stsError(403, failure.type, failure.message);
}

/**
 * Parses a form body. Duplicate parameters and broken percent-encoding are refused rather than
 * guessed at: an endpoint that silently picked one of two `RoleArn`s would hide a client bug.
 *
 * @example
 * ```ts
 * parseForm("Action=AssumeRole&RoleSessionName=a%2Bb"); // { params: Map { Action → "AssumeRole", RoleSessionName → "a+b" } }
 * parseForm("Action=%zz"); // { error: { status: 400, code: "MalformedQueryString", ... } }
 * ```
 */
export function parseForm(body: string): { params: Map<string, string> } | { error: StsError } {
  const params = new Map<string, string>();
  for (const pair of body.split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const name = decodeFormComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = decodeFormComponent(eq < 0 ? "" : pair.slice(eq + 1));
    if (name === undefined || value === undefined) {
      return { error: stsError(400, "MalformedQueryString", "The request body is not valid application/x-www-form-urlencoded data") };
    }
    // `&&` and `=x` carry nothing; AWS skips them too.
    if (name === "") continue;
    if (params.has(name)) return { error: stsError(400, "MalformedQueryString", `Parameter ${name} appears more than once`) };
    params.set(name, value);
  }
  return { params };
}

// In form encoding `+` is a space (the SDK itself sends spaces as %20 and `+` as %2B).
function decodeFormComponent(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return undefined;
  }
}

/**
 * An XML element: a name and text, or child elements in order; `undefined` values are left out.
 *
 * @example
 * ```ts
 * const user: XmlElement = ["AssumedRoleUser", [["AssumedRoleId", "AROAEXAMPLE:job"], ["Arn", "arn:aws:sts::123456789012:assumed-role/agent/job"]]];
 * ```
 */
export type XmlElement = [name: string, value: string | number | XmlElement[] | undefined];

/**
 * `<{Action}Response><{Action}Result>…</{Action}Result><ResponseMetadata>…` as STS renders it.
 *
 * @example
 * ```ts
 * const xml = renderResult("AssumeRole", [["PackedPolicySize", 6]], randomUUID());
 * ```
 */
export function renderResult(action: string, result: XmlElement[], requestId: string): string {
  return (
    `<${action}Response xmlns="${NAMESPACE}">\n` +
    renderElements([[`${action}Result`, result], ["ResponseMetadata", [["RequestId", requestId]]]], 1) +
    `</${action}Response>\n`
  );
}

/**
 * The `ErrorResponse` document; `Type` is `Sender` for the caller's faults, `Receiver` for the service's.
 *
 * @example
 * ```ts
 * const xml = renderError(stsError(400, "Throttling", "Rate exceeded"), randomUUID());
 * ```
 */
export function renderError(error: StsError, requestId: string): string {
  const type = error.status >= 500 ? "Receiver" : "Sender";
  return (
    `<ErrorResponse xmlns="${NAMESPACE}">\n` +
    renderElements([["Error", [["Type", type], ["Code", error.code], ["Message", error.message]]], ["RequestId", requestId]], 1) +
    `</ErrorResponse>\n`
  );
}

function renderElements(elements: XmlElement[], depth: number): string {
  const indent = "  ".repeat(depth);
  let xml = "";
  for (const [name, value] of elements) {
    if (value === undefined) continue;
    xml += Array.isArray(value)
      ? `${indent}<${name}>\n${renderElements(value, depth + 1)}${indent}</${name}>\n`
      : `${indent}<${name}>${escapeXml(String(value))}</${name}>\n`;
  }
  return xml;
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/**
 * AWS's validation wording: `1 validation error detected: Value 'x' at 'roleSessionName' failed to
 * satisfy constraint: Member must …`, several joined with `; `.
 *
 * @example
 * ```ts
 * validationError([constraintProblem("roleSessionName", "a", "have length between 2 and 64")]);
 * ```
 */
export function validationError(problems: readonly string[]): StsError {
  const count = problems.length;
  return stsError(400, "ValidationError", `${count} validation error${count === 1 ? "" : "s"} detected: ${problems.join("; ")}`);
}

/**
 * One problem for {@link validationError}; long values are cut, as AWS does not echo kilobytes back.
 *
 * @example
 * ```ts
 * constraintProblem("roleArn", undefined, "not be null"); // "Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
 * ```
 */
export function constraintProblem(member: string, value: string | undefined, constraint: string): string {
  const shown = value === undefined ? "null" : `'${value.length > 128 ? `${value.slice(0, 128)}…` : value}'`;
  return `Value ${shown} at '${member}' failed to satisfy constraint: Member must ${constraint}`;
}
