/**
 * Maps a method and path to a Bedrock Runtime operation, following the `@http` traits of the
 * service model (as compiled into `@aws-sdk/client-bedrock-runtime`'s schemas).
 * @module
 */
import type { BedrockOperation } from "./types.js";

/** The operation a request was routed to and its decoded path parameters. */
export interface Route {
  operation: BedrockOperation;
  pathParameters: Record<string, string>;
}

interface RouteSpec {
  method: "GET" | "POST";
  /** Path segments; `{name}` captures one (still encoded) segment. */
  segments: string[];
  operation: BedrockOperation;
}

const ROUTES: RouteSpec[] = [
  ["POST", "/model/{modelId}/converse", "Converse"],
  ["POST", "/model/{modelId}/converse-stream", "ConverseStream"],
  ["POST", "/model/{modelId}/invoke", "InvokeModel"],
  ["POST", "/model/{modelId}/invoke-with-response-stream", "InvokeModelWithResponseStream"],
  ["POST", "/model/{modelId}/invoke-with-bidirectional-stream", "InvokeModelWithBidirectionalStream"],
  ["POST", "/model/{modelId}/count-tokens", "CountTokens"],
  ["POST", "/guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply", "ApplyGuardrail"],
  ["POST", "/guardrail-checks/invoke", "InvokeGuardrailChecks"],
  ["POST", "/async-invoke", "StartAsyncInvoke"],
  ["GET", "/async-invoke", "ListAsyncInvokes"],
  ["GET", "/async-invoke/{invocationArn}", "GetAsyncInvoke"],
].map(([method, path, operation]) => ({
  method: method as RouteSpec["method"],
  segments: path!.split("/").slice(1),
  operation: operation as BedrockOperation,
}));

/**
 * Routes a request. `path` must be the raw, still-encoded path: model ARNs arrive with `/` encoded
 * as `%2F`, so splitting after decoding would cut them apart.
 */
export function routeRequest(method: string, path: string): Route {
  const segments = path.split("/").slice(1);
  for (const route of ROUTES) {
    if (route.method !== method || route.segments.length !== segments.length) continue;
    const pathParameters: Record<string, string> = {};
    const matches = route.segments.every((expected, i) => {
      const actual = segments[i]!;
      if (!expected.startsWith("{")) return expected === actual;
      const value = safeDecode(actual);
      if (!value) return false;
      pathParameters[expected.slice(1, -1)] = value;
      return true;
    });
    if (matches) return { operation: route.operation, pathParameters };
  }
  return { operation: "Unknown", pathParameters: {} };
}

/**
 * Splits a query string into decoded parameters. `URLSearchParams` is avoided on purpose: it turns
 * `+` into a space, which SigV4 (and the SDK, which encodes spaces as `%20`) does not.
 */
export function parseQuery(query: string): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const pair of query.split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const key = safeDecode(eq < 0 ? pair : pair.slice(0, eq)) ?? pair;
    const value = eq < 0 ? "" : (safeDecode(pair.slice(eq + 1)) ?? pair.slice(eq + 1));
    const previous = result[key];
    result[key] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  return result;
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
