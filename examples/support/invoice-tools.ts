/**
 * The invoice agent's tools, shared by the examples: how the application declares them to its
 * governance (effect, sensitivity, owner, input schema), what it offers the model in a Converse
 * `toolConfig`, and a tiny in-memory billing system for the executors to act on.
 *
 * Every example that loads `examples/policies/` declares these tools: the policies there name the
 * action `Bedrock::Action::"tool:issue_refund"` and read `context.input.amount`, which exist only
 * once the tool is declared (`createGovernance({ tools: INVOICE_TOOLS })`).
 */
import type { Tool } from "@aws-sdk/client-bedrock-runtime";
import type { ToolDefinition } from "bedrock-warden";

const lookupInvoiceSchema = {
  type: "object",
  properties: { invoiceId: { type: "string", description: "The invoice number, e.g. INV-4711" } },
  required: ["invoiceId"],
} as const;

const issueRefundSchema = {
  type: "object",
  properties: {
    invoiceId: { type: "string", description: "The invoice to refund" },
    amount: { type: "number", description: "The amount to refund, in the invoice's currency" },
  },
  required: ["invoiceId", "amount"],
} as const;

const deleteCustomerSchema = {
  type: "object",
  properties: { customerId: { type: "string", description: "The customer to delete, e.g. CUST-42" } },
  required: ["customerId"],
} as const;

/** The declarations: each becomes the Cedar action `tool:<name>`, its input typed from the schema. */
export const INVOICE_TOOLS: ToolDefinition[] = [
  { name: "lookup_invoice", effect: "read", sensitivity: "financial", owner: "team-billing", inputSchema: lookupInvoiceSchema },
  { name: "issue_refund", effect: "mutate", sensitivity: "financial", owner: "team-billing", inputSchema: issueRefundSchema },
  { name: "delete_customer", effect: "mutate", sensitivity: "pii", owner: "team-crm", inputSchema: deleteCustomerSchema },
];

export const DESCRIPTIONS: Record<string, string> = {
  lookup_invoice: "Look up an invoice: customer, amount, currency, payments received.",
  issue_refund: "Refund an amount on an invoice to the customer's payment method.",
  delete_customer: "Delete a customer and all their data.",
};

/** The same tools as a Converse `toolConfig.tools` list (what a raw-SDK agent offers the model). */
export function converseTools(): Tool[] {
  return INVOICE_TOOLS.map((tool) => ({
    toolSpec: { name: tool.name, description: DESCRIPTIONS[tool.name], inputSchema: { json: tool.inputSchema as never } },
  }));
}

/** A stand-in billing system: what the executors read and change. */
export const billing = {
  invoices: new Map([
    ["INV-4711", { invoiceId: "INV-4711", customer: "ACME GmbH", amount: 5000, currency: "EUR", payments: [5000, 5000] }],
    ["INV-4712", { invoiceId: "INV-4712", customer: "Globex", amount: 80, currency: "EUR", payments: [80] }],
  ]),
  refunds: [] as { invoiceId: string; amount: number }[],
  deletedCustomers: [] as string[],
};

export function lookupInvoice(input: { invoiceId: string }) {
  const invoice = billing.invoices.get(input.invoiceId);
  if (!invoice) throw new Error(`no invoice ${input.invoiceId}`);
  return invoice;
}

export function issueRefund(input: { invoiceId: string; amount: number }) {
  billing.refunds.push({ invoiceId: input.invoiceId, amount: input.amount });
  return { refunded: input.amount, invoiceId: input.invoiceId, reference: `RF-${billing.refunds.length}` };
}

export function deleteCustomer(input: { customerId: string }) {
  billing.deletedCustomers.push(input.customerId);
  return { deleted: input.customerId };
}
