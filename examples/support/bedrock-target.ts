/**
 * Where the examples send their calls: the embedded local Bedrock endpoint by default, or real
 * Amazon Bedrock when `BEDROCK_WARDEN_TARGET=aws` (credentials from the usual AWS chain, region
 * from AWS_REGION, default us-east-1).
 */
import { startLocalBedrock, type LocalBedrock, type ModelReply } from "bedrock-warden/local-endpoint";

export interface BedrockTarget {
  /** SDK client configuration for this target. */
  readonly clientConfig: { region: string; endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
  readonly description: string;
  /** The local endpoint, when running locally (to script the model and count requests). */
  readonly local?: LocalBedrock;
  close(): Promise<void>;
}

export async function bedrockTarget(reply?: (request: { operation: string; body: unknown }) => ModelReply): Promise<BedrockTarget> {
  if (process.env["BEDROCK_WARDEN_TARGET"] === "aws") {
    const region = process.env["AWS_REGION"] ?? process.env["AWS_DEFAULT_REGION"] ?? "us-east-1";
    return { clientConfig: { region }, description: `Amazon Bedrock in ${region} (real AWS: calls are billed)`, close: async () => {} };
  }
  const local = await startLocalBedrock(reply ? { reply: (request) => reply(request) } : {});
  return {
    clientConfig: { region: local.region, endpoint: local.url, credentials: local.credentials },
    description: `the embedded local Bedrock endpoint at ${local.url} (no AWS account needed)`,
    local,
    close: () => local.close(),
  };
}
