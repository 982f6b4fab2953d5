/**
 * One model, however the caller names it: a bare model id, a foundation-model ARN, a system
 * inference profile id or ARN, a prompt router, or the ARN of an application inference profile,
 * provisioned, custom or imported model, prompt or marketplace endpoint. Policies see a single
 * canonical `Bedrock::Model` entity: a foundation model is the same entity however it is named,
 * and a system inference profile or an AWS default prompt router is a member of the provider (and
 * a profile of the base model) it routes to.
 *
 * What cannot be read from a name is not guessed: an application inference profile, a provisioned,
 * custom or imported model, a prompt, a custom prompt router or a marketplace endpoint routes to a
 * model only AWS knows, so its entity has no provider (and the request's `payloadInspected` is
 * false). A `forbid` on a provider or a model cannot reach such a call; an allow-list, or a forbid
 * on `!(resource has provider)`, can.
 * @module
 */

/**
 * The attributes of a `Bedrock::Model` entity (see the shipped schema).
 *
 * @example
 * ```ts
 * const model: ModelResource = modelResource("us.anthropic.claude-3-5-haiku-20241022-v1:0");
 * model.baseModel; // "anthropic.claude-3-5-haiku-20241022-v1:0"
 * ```
 */
export interface ModelResource {
  /** The canonical entity id. */
  readonly id: string;
  readonly kind: ModelKind;
  readonly provider?: string;
  readonly baseModel?: string;
  readonly geo?: string;
  readonly region?: string;
  readonly account?: string;
}

/**
 * How the model was addressed (`resource.kind` in policies).
 *
 * @example
 * ```ts
 * const kind: ModelKind = modelResource("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc").kind; // "provisioned-model"
 * ```
 */
export type ModelKind =
  | "foundation-model"
  | "inference-profile"
  | "application-inference-profile"
  | "provisioned-model"
  | "custom-model"
  | "imported-model"
  | "prompt"
  | "prompt-router"
  | "marketplace-endpoint"
  | "unknown";

const ARN = /^arn:(aws[a-z-]*):bedrock:([a-z0-9-]*):(\d{12})?:([a-z-]+)\/(.+)$/;
// A Bedrock Marketplace model is served by a SageMaker endpoint, and may be called by its ARN.
const SAGEMAKER_ENDPOINT_ARN = /^arn:(aws[a-z-]*):sagemaker:([a-z0-9-]*):(\d{12})?:endpoint\/(.+)$/;
// An AWS default prompt router is named for the model family it routes within: "anthropic.claude:1", "meta.llama:1".
const DEFAULT_ROUTER = /^([a-z][a-z0-9-]*)\.[A-Za-z0-9][A-Za-z0-9._-]*:\d+$/;
// Provider-prefixed ids: "anthropic.claude-…", "amazon.nova-…", "meta.llama3-…"; the provider is a
// lower-case word. A system inference profile puts a routing scope first: "us.", "eu.", "apac.", "global.".
const FOUNDATION_ID = /^([a-z][a-z0-9-]*)\.[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const PROFILE_GEOS = new Set(["us", "eu", "apac", "us-gov", "global", "ca", "jp", "au"]);
// A foundation model's context-window variant: its id, a colon and a window size ("…-v1:0:200k").
const CONTEXT_WINDOW_VARIANT = /^(.+-v\d+(?::\d+)?):\d+k$/;

const RESOURCE_KINDS: Readonly<Record<string, ModelKind>> = {
  "foundation-model": "foundation-model",
  "inference-profile": "inference-profile",
  "application-inference-profile": "application-inference-profile",
  "provisioned-model": "provisioned-model",
  "custom-model": "custom-model",
  "custom-model-deployment": "custom-model",
  "imported-model": "imported-model",
  prompt: "prompt",
  "default-prompt-router": "prompt-router",
  "prompt-router": "prompt-router",
  endpoint: "marketplace-endpoint",
};

/**
 * Normalizes a `modelId` as given to any Bedrock Runtime command.
 *
 * @example
 * ```ts
 * modelResource("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0").id;
 * // "anthropic.claude-3-haiku-20240307-v1:0"
 * modelResource("eu.anthropic.claude-3-haiku-20240307-v1:0");
 * // { id: "eu.anthropic.claude-3-haiku-20240307-v1:0", kind: "inference-profile", provider: "anthropic",
 * //   baseModel: "anthropic.claude-3-haiku-20240307-v1:0", geo: "eu" }
 * ```
 */
export function modelResource(modelId: string): ModelResource {
  const arn = ARN.exec(modelId);
  if (arn) {
    const [, , region, account, type, rest] = arn as unknown as [string, string, string, string | undefined, string, string];
    // Own keys only: an ARN type "constructor" is unknown, not Object's.
    const kind = Object.hasOwn(RESOURCE_KINDS, type) ? (RESOURCE_KINDS[type] as ModelKind) : "unknown";
    const where = { ...(region && { region }), ...(account && { account }) };
    if (kind === "foundation-model" || kind === "inference-profile") {
      const named = bareModel(rest);
      // A foundation-model ARN is the same model as its bare id; a system profile ARN the same profile.
      if (named.kind === kind) return { ...named, ...where };
    }
    if (type === "default-prompt-router") {
      // Routes among one provider's models: a member of that provider, as a system profile is.
      const family = DEFAULT_ROUTER.exec(rest);
      if (family) return { id: modelId, kind, provider: family[1] as string, ...where };
    }
    return { id: modelId, kind, ...where };
  }
  const endpoint = SAGEMAKER_ENDPOINT_ARN.exec(modelId);
  if (endpoint) {
    const [, , region, account] = endpoint as unknown as [string, string, string, string | undefined];
    return { id: modelId, kind: "marketplace-endpoint", ...(region && { region }), ...(account && { account }) };
  }
  return bareModel(modelId);
}

function bareModel(modelId: string): ModelResource {
  const match = FOUNDATION_ID.exec(modelId);
  if (!match) return { id: modelId, kind: "unknown" };
  const first = match[1] as string;
  const rest = modelId.slice(first.length + 1);
  if (PROFILE_GEOS.has(first)) {
    const base = FOUNDATION_ID.exec(rest);
    if (base) return { id: modelId, kind: "inference-profile", provider: base[1] as string, baseModel: rest, geo: first };
  }
  // "sa.anthropic.claude-…": a routing scope this version does not know, in front of a model id. Its
  // first word is not a provider, and guessing would hand "sa" the model: not attributed.
  if (FOUNDATION_ID.test(rest)) return { id: modelId, kind: "unknown" };
  // "anthropic.claude-3-sonnet-20240229-v1:0:28k": a context-window variant of its model.
  const variant = CONTEXT_WINDOW_VARIANT.exec(modelId);
  if (variant) return { id: modelId, kind: "foundation-model", provider: first, baseModel: variant[1] as string };
  return { id: modelId, kind: "foundation-model", provider: first };
}
