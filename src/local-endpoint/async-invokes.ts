/**
 * The endpoint's memory of StartAsyncInvoke jobs, so that GetAsyncInvoke and ListAsyncInvokes
 * describe the jobs a test started. Jobs complete at once: there is no model to wait for.
 * @module
 */
import { randomBytes } from "node:crypto";
import { isRecord } from "../records.js";

interface AsyncInvocation {
  invocationArn: string;
  modelArn: string;
  clientRequestToken?: string;
  status: "Completed";
  submitTime: string;
  lastModifiedTime: string;
  endTime: string;
  outputDataConfig: unknown;
}

export class AsyncInvocations {
  private readonly jobs = new Map<string, AsyncInvocation>();

  constructor(private readonly region: string) {}

  clear(): void {
    this.jobs.clear();
  }

  /** StartAsyncInvoke's body. A repeated `clientRequestToken` returns the same job, as AWS does. */
  start(body: unknown): { invocationArn: string } {
    const input = isRecord(body) ? body : {};
    const token = typeof input["clientRequestToken"] === "string" ? input["clientRequestToken"] : undefined;
    const existing = token ? [...this.jobs.values()].find((job) => job.clientRequestToken === token) : undefined;
    if (existing) return { invocationArn: existing.invocationArn };
    const now = new Date().toISOString();
    const job: AsyncInvocation = {
      invocationArn: `arn:aws:bedrock:${this.region}:000000000000:async-invoke/${randomBytes(6).toString("hex")}`,
      modelArn: this.modelArn(typeof input["modelId"] === "string" ? input["modelId"] : "unknown"),
      ...(token ? { clientRequestToken: token } : {}),
      status: "Completed",
      submitTime: now,
      lastModifiedTime: now,
      endTime: now,
      outputDataConfig: input["outputDataConfig"] ?? { s3OutputDataConfig: { s3Uri: "s3://local-bedrock/output/" } },
    };
    this.jobs.set(job.invocationArn, job);
    return { invocationArn: job.invocationArn };
  }

  /** GetAsyncInvoke's body. An ARN the endpoint never issued still gets a completed job, so tests need no setup. */
  get(invocationArn: string): AsyncInvocation {
    const known = this.jobs.get(invocationArn);
    if (known) return known;
    const now = new Date().toISOString();
    return {
      invocationArn,
      modelArn: this.modelArn("unknown"),
      status: "Completed",
      submitTime: now,
      lastModifiedTime: now,
      endTime: now,
      outputDataConfig: { s3OutputDataConfig: { s3Uri: "s3://local-bedrock/output/" } },
    };
  }

  /** ListAsyncInvokes' body: started jobs, newest first, honouring `statusEquals` and `maxResults`. */
  list(query: Record<string, string>): { asyncInvokeSummaries: AsyncInvocation[] } {
    let jobs = [...this.jobs.values()].reverse();
    if (query["statusEquals"]) jobs = jobs.filter((job) => job.status === query["statusEquals"]);
    const max = Number(query["maxResults"]);
    if (Number.isInteger(max) && max > 0) jobs = jobs.slice(0, max);
    return { asyncInvokeSummaries: jobs };
  }

  private modelArn(modelId: string): string {
    return modelId.startsWith("arn:") ? modelId : `arn:aws:bedrock:${this.region}::foundation-model/${modelId}`;
  }
}

