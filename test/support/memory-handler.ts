import { HttpResponse, type HttpRequest } from "@smithy/protocol-http";
import type { HttpHandlerOptions, RequestHandler } from "@smithy/types";

/** An in-memory request handler: answers every request with `respond(req)` and remembers the requests. */
export class MemoryHandler implements RequestHandler<HttpRequest, HttpResponse, HttpHandlerOptions> {
  readonly requests: HttpRequest[] = [];
  constructor(private readonly respond: (request: HttpRequest) => HttpResponse = () => jsonResponse(converseReply("hello"))) {}
  async handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
    this.requests.push(request);
    return { response: this.respond(request) };
  }
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): HttpResponse {
  return new HttpResponse({
    statusCode: status,
    headers: { "content-type": "application/json", "x-amzn-requestid": "req-1", ...headers },
    body: Buffer.from(JSON.stringify(body)),
  });
}

export function converseReply(text: string) {
  return {
    output: { message: { role: "assistant", content: [{ text }] } },
    stopReason: "end_turn",
    usage: { inputTokens: 11, outputTokens: 7, totalTokens: 18 },
    metrics: { latencyMs: 5 },
  };
}
