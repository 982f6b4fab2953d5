/**
 * The scripted "model" of the tool examples, for the embedded local endpoint. It reads the
 * Converse request it is sent (`request.body`, the parsed JSON) to decide its turn, as a real model
 * reads the conversation:
 *
 * - no tool results yet: it asks for two tools at once — `lookup_invoice` (a read: allowed) and
 *   `issue_refund` of 5000 (over the limit: denied);
 * - tool results in the last message: it answers in text, from what the results say (including
 *   the denial's reason).
 *
 * With `BEDROCK_WARDEN_TARGET=aws` this script is not used: a real model chooses its own tools.
 */
import type { ModelReply } from "bedrock-warden/local-endpoint";

interface ConverseBody {
  messages?: { role: string; content?: Record<string, unknown>[] }[];
}
interface ToolResultBlock {
  toolUseId: string;
  status?: string;
  content?: { text?: string; json?: unknown }[];
}

export function scriptedInvoiceModel(request: { operation: string; body: unknown }): ModelReply {
  const messages = (request.body as ConverseBody | undefined)?.messages ?? [];
  const last = messages.at(-1);
  const results = (last?.content ?? []).flatMap((block) => (block["toolResult"] ? [block["toolResult"] as ToolResultBlock] : []));
  const turn = messages.filter((m) => m.role === "assistant").length + 1;

  if (results.length === 0) {
    return {
      text: "I'll look up INV-4711 and refund the duplicate payment.",
      toolUses: [
        { toolUseId: `tooluse_${turn}_lookup`, name: "lookup_invoice", input: { invoiceId: "INV-4711" } },
        { toolUseId: `tooluse_${turn}_refund`, name: "issue_refund", input: { invoiceId: "INV-4711", amount: 5000 } },
      ],
      stopReason: "tool_use",
    };
  }

  const texts = results.map((r) => ({ id: r.toolUseId, status: r.status, body: (r.content ?? []).map(contentText).join("") }));
  const invoice = texts.map((t) => tryJson(t.body)).find((v): v is { customer: string; amount: number; currency: string; payments: number[] } =>
    typeof v === "object" && v !== null && "payments" in v,
  );
  const denial = texts.map((t) => /Denied by policy: (.*?)\.? Do not retry/.exec(t.body)?.[1]).find((reason) => reason !== undefined);
  const found = invoice
    ? `${invoice.customer} paid INV-4711 (${invoice.amount} ${invoice.currency}) ${invoice.payments.length} times`
    : "I could not read invoice INV-4711";
  const refund = denial
    ? `I did not refund the duplicate payment: ${denial}. Please have someone in billing approve a refund of ${invoice?.amount ?? "the"} ${invoice?.currency ?? "amount"}.`
    : "The duplicate payment has been refunded.";
  return { text: `${found}. ${refund}`, stopReason: "end_turn" };
}

function contentText(block: { text?: string; json?: unknown }): string {
  return block.text ?? (block.json === undefined ? "" : JSON.stringify(block.json));
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
