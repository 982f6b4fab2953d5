import assert from "node:assert/strict";
import type { Readable } from "node:stream";
import { beforeEach, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ConverseStreamCommand, InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import type { HttpRequest, HttpResponse } from "@smithy/protocol-http";
import { trace } from "@opentelemetry/api";
import { exporter } from "./support/tracing.js";
import { converseStreamFrames, eventStreamResponse, exceptionFrame, frame } from "./support/event-stream.js";
import { currentScope, GEN_AI, runAs, WARDEN } from "../src/index.js";
import { GovernedCall } from "../src/middleware/governed-call.js";
import { guardStream, type StreamInspector } from "../src/middleware/stream-guard.js";
import { converseInput, harness, invoiceAgent } from "./support/governance.js";
import type { MemoryHandler } from "./support/memory-handler.js";

beforeEach(() => exporter.reset());

/** A handler that streams `frames` and remembers each response body it handed out. */
function streamingHandler(frames: () => Uint8Array[], delayMs = 0) {
  const bodies: Readable[] = [];
  const requests: HttpRequest[] = [];
  return {
    bodies,
    requests,
    async handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
      requests.push(request);
      const { response, body } = eventStreamResponse(frames(), delayMs);
      bodies.push(body);
      return { response };
    },
  };
}

describe("ConverseStream", () => {
  it("delivers every event, and ends the span when the stream ends, with usage, finish reason and time to first chunk", async () => {
    const chunks = Array.from({ length: 20 }, (_, i) => `word${i} `);
    const handler = streamingHandler(() => converseStreamFrames(chunks));
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    const texts: string[] = [];
    await runAs(invoiceAgent, async () => {
      const output = await client.send(new ConverseStreamCommand(converseInput()));
      assert.equal(exporter.getFinishedSpans().length, 0, "the span stays open while the stream is read");
      for await (const event of output.stream ?? []) if (event.contentBlockDelta?.delta?.text) texts.push(event.contentBlockDelta.delta.text);
    });
    assert.deepEqual(texts, chunks);
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.attributes[WARDEN.STREAM_OUTCOME], "completed");
    assert.equal(span?.attributes[WARDEN.STREAM_EVENTS], chunks.length + 4);
    assert.equal(span?.attributes[GEN_AI.USAGE_OUTPUT_TOKENS], 34);
    assert.deepEqual(span?.attributes[GEN_AI.RESPONSE_FINISH_REASONS], ["end_turn"]);
    assert.equal(typeof span?.attributes[WARDEN.STREAM_TIME_TO_FIRST_CHUNK], "number");
    assert.equal(records.length, 1);
    assert.equal(records[0]?.outcome, "completed");
    assert.deepEqual(records[0]?.usage, { inputTokens: 12, outputTokens: 34 });
  });

  it("hands each event to the caller as it arrives, without buffering", async () => {
    const handler = streamingHandler(() => converseStreamFrames(["a", "b", "c", "d"]), 40);
    const { client } = harness(undefined, handler as unknown as MemoryHandler);
    const arrivals: number[] = [];
    const started = Date.now();
    await runAs(invoiceAgent, async () => {
      const output = await client.send(new ConverseStreamCommand(converseInput()));
      for await (const _ of output.stream ?? []) arrivals.push(Date.now() - started);
    });
    // 9 frames 40 ms apart: buffering would deliver them together at the end.
    assert.ok(arrivals.at(-1)! - arrivals[1]! >= 150, `events spread over time: ${arrivals.join(", ")}`);
  });

  it("on an early break: closes the response body (so the model stops) and ends the span as abandoned", async () => {
    const handler = streamingHandler(() => converseStreamFrames(Array.from({ length: 500 }, () => "x")), 2);
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    await runAs(invoiceAgent, async () => {
      const output = await client.send(new ConverseStreamCommand(converseInput()));
      let seen = 0;
      for await (const _ of output.stream ?? []) if (++seen === 3) break;
    });
    assert.equal(handler.bodies[0]?.destroyed, true, "the HTTP body is destroyed");
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.attributes[WARDEN.STREAM_OUTCOME], "abandoned");
    assert.equal(records[0]?.outcome, "abandoned");
  });

  it("ends the span as failed when the stream fails midway, and rethrows the error", async () => {
    const handler = streamingHandler(() => [...converseStreamFrames(["a"]).slice(0, 2), exceptionFrame("modelStreamErrorException", "model crashed")]);
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    await runAs(invoiceAgent, async () => {
      const output = await client.send(new ConverseStreamCommand(converseInput()));
      await assert.rejects(async () => {
        for await (const _ of output.stream ?? []);
      }, /model crashed/);
    });
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.attributes[WARDEN.STREAM_OUTCOME], "failed");
    assert.equal(span?.status.code, 2);
    assert.equal(records[0]?.outcome, "failed");
  });

  it("ends the span of a stream that is never read once it is garbage collected, and closes its body", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const handler = streamingHandler(() => converseStreamFrames(["never read"]), 5);
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    await runAs(invoiceAgent, async () => {
      await client.send(new ConverseStreamCommand(converseInput()));
    });
    for (let i = 0; i < 20 && records.length === 0; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(records[0]?.outcome, "abandoned");
    assert.equal(exporter.getFinishedSpans()[0]?.attributes[WARDEN.STREAM_OUTCOME], "abandoned");
    assert.equal(handler.bodies[0]?.destroyed, true);
  });
});

describe("InvokeModelWithResponseStream", () => {
  it("reads usage and the stop reason from the provider's chunks", async () => {
    const chunk = (event: unknown) => frame("chunk", { bytes: Buffer.from(JSON.stringify(event)).toString("base64") });
    const handler = streamingHandler(() => [
      chunk({ type: "message_start", message: { usage: { input_tokens: 9 } } }),
      chunk({ type: "content_block_delta", delta: { type: "text_delta", text: "hi" } }),
      chunk({ type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 3 } }),
      chunk({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 9, outputTokenCount: 3 } }),
    ]);
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    await runAs(invoiceAgent, async () => {
      const output = await client.send(
        new InvokeModelWithResponseStreamCommand({ modelId: converseInput().modelId, body: JSON.stringify({ max_tokens: 10, messages: [] }) }),
      );
      let events = 0;
      for await (const _ of output.body ?? []) events++;
      assert.equal(events, 4);
    });
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.attributes[GEN_AI.USAGE_INPUT_TOKENS], 9);
    assert.equal(span?.attributes[GEN_AI.USAGE_OUTPUT_TOKENS], 3);
    assert.deepEqual(span?.attributes[GEN_AI.RESPONSE_FINISH_REASONS], ["end_turn"]);
    assert.deepEqual(records[0]?.usage, { inputTokens: 9, outputTokens: 3 });
  });
});

describe("ending a stream by hand", () => {
  for (const how of ["return", "throw"] as const) {
    it(`${how}() before the first event still closes the body and ends the call once`, async () => {
      const handler = streamingHandler(() => converseStreamFrames(Array.from({ length: 200 }, () => "x")), 2);
      const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
      await runAs(invoiceAgent, async () => {
        const output = await client.send(new ConverseStreamCommand(converseInput()));
        const iterator = output.stream![Symbol.asyncIterator]();
        if (how === "return") await iterator.return!();
        else await assert.rejects(iterator.throw!(new Error("caller gave up")), /caller gave up/);
        assert.deepEqual(await iterator.next(), { done: true, value: undefined });
      });
      assert.equal(handler.bodies[0]?.destroyed, true);
      assert.equal(records.length, 1);
      assert.equal(records[0]?.outcome, "abandoned");
      assert.equal(exporter.getFinishedSpans().length, 1);
    });
  }

  it("return() while a read is pending: the read settles, the body is closed, the call ends once, as abandoned", async () => {
    const handler = streamingHandler(() => converseStreamFrames(Array.from({ length: 200 }, () => "x")), 20);
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    await runAs(invoiceAgent, async () => {
      const output = await client.send(new ConverseStreamCommand(converseInput()));
      const iterator = output.stream![Symbol.asyncIterator]();
      assert.equal((await iterator.next()).done, false);
      const pending = iterator.next();
      await iterator.return!();
      // Closing the body may fail the read that waits on it; either way it settles.
      await pending.catch(() => undefined);
      assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    });
    assert.equal(handler.bodies[0]?.destroyed, true);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.outcome, "abandoned");
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 1);
    assert.equal(spans[0]?.attributes[WARDEN.STREAM_OUTCOME], "abandoned");
  });

  it("a stream read in part and then dropped is ended as abandoned once it is garbage collected", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const handler = streamingHandler(() => converseStreamFrames(Array.from({ length: 50 }, () => "x")));
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    await runAs(invoiceAgent, async () => {
      const output = await client.send(new ConverseStreamCommand(converseInput()));
      const iterator = output.stream![Symbol.asyncIterator]();
      for (let i = 0; i < 3; i++) assert.equal((await iterator.next()).done, false);
    });
    for (let i = 0; i < 20 && records.length === 0; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(records.length, 1);
    assert.equal(records[0]?.outcome, "abandoned");
    assert.equal(exporter.getFinishedSpans()[0]?.attributes[WARDEN.STREAM_EVENTS], 3);
    assert.equal(handler.bodies[0]?.destroyed, true);
  });

  it("reading a finished stream again yields nothing and records nothing more", async () => {
    const handler = streamingHandler(() => converseStreamFrames(["a", "b"]));
    const { client, records } = harness(undefined, handler as unknown as MemoryHandler);
    await runAs(invoiceAgent, async () => {
      const output = await client.send(new ConverseStreamCommand(converseInput()));
      let first = 0;
      for await (const _ of output.stream ?? []) first++;
      let second = 0;
      for await (const _ of output.stream ?? []) second++;
      assert.equal(first, 6);
      assert.equal(second, 0);
    });
    assert.equal(records.length, 1);
    assert.equal(records[0]?.outcome, "completed");
  });
});

describe("the stream guard, on sources of its own", () => {
  type Event = Record<string, unknown>;
  const newCall = (): GovernedCall => {
    const { governance } = harness();
    const scope = runAs(invoiceAgent, () => currentScope());
    return new GovernedCall(governance, "ConverseStreamCommand", trace.getTracer("test").startSpan("guarded"), invoiceAgent, scope, {});
  };
  const quiet: StreamInspector<Event> = { event: () => undefined, end: () => undefined };
  /** An iterable over `next`, which is called as is (it may throw, or return what it likes). */
  const sourceOf = (next: () => unknown, onReturn?: () => void): AsyncIterable<Event> => ({
    [Symbol.asyncIterator]: () =>
      ({
        next,
        return: async () => {
          onReturn?.();
          return { done: true, value: undefined };
        },
      }) as AsyncIterator<Event>,
  });

  it("a source whose next() throws at once fails the call, once, with its error", async () => {
    const call = newCall();
    const guarded = guardStream(sourceOf(() => { throw new Error("source broke"); }), call, quiet)[Symbol.asyncIterator]();
    await assert.rejects(guarded.next(), /source broke/);
    assert.equal(call.finished, true);
    assert.equal(call.observation.stream?.outcome, "failed");
    assert.deepEqual(await guarded.next(), { done: true, value: undefined });
  });

  it("a source that returns plain results (not promises) is read all the same", async () => {
    const call = newCall();
    const events = [{ a: 1 }, { b: 2 }];
    let i = 0;
    const guarded = guardStream(sourceOf(() => (i < events.length ? { done: false, value: events[i++] } : { done: true, value: undefined })), call, quiet);
    const seen: Event[] = [];
    for await (const event of guarded) seen.push(event);
    assert.deepEqual(seen, events);
    assert.equal(call.observation.stream?.outcome, "completed");
    assert.equal(call.observation.stream?.events, 2);
  });

  it("a refusal withholds its event, ends the call failed and closes the source; an inspector that throws does not stop the stream", async () => {
    const call = newCall();
    let returned = 0;
    let i = 0;
    const source = sourceOf(async () => ({ done: false, value: { n: i++ } }), () => returned++);
    const inspector: StreamInspector<Event> = {
      event: (event) => {
        if (event["n"] === 0) throw new Error("inspector bug");
        return event["n"] === 2 ? new Error("refused at 2") : undefined;
      },
      end: () => undefined,
    };
    const seen: unknown[] = [];
    await assert.rejects(async () => {
      for await (const event of guardStream(source, call, inspector)) seen.push(event["n"]);
    }, /refused at 2/);
    assert.deepEqual(seen, [0, 1]);
    assert.equal(call.finished, true);
    assert.equal(call.observation.stream?.outcome, "failed");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(returned, 1, "the source is closed");
  });
});
