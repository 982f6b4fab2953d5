import { after, before, beforeEach } from "node:test";
import { GovernedBedrockRuntimeClient, type DecisionRecord, type Governance, type GovernedBedrockRuntimeClientConfig } from "../../src/index.js";
import { startLocalBedrock, type LocalBedrock } from "../../src/local-endpoint/index.js";
import { exporter } from "./tracing.js";

/**
 * The embedded endpoint for one test file: started before its tests, reset (with the exporter and
 * `records`) before each, closed after; governed clients pointed at it are destroyed at the end.
 */
export function useLocalBedrock(records: DecisionRecord[]) {
  let server: LocalBedrock | undefined;
  const clients: GovernedBedrockRuntimeClient[] = [];
  before(async () => {
    server = await startLocalBedrock();
  });
  after(async () => {
    for (const client of clients) client.destroy();
    await server?.close();
  });
  beforeEach(() => {
    server?.reset();
    exporter.reset();
    records.length = 0;
  });
  return {
    get server(): LocalBedrock {
      if (!server) throw new Error("the local endpoint starts before the tests");
      return server;
    },
    /** A governed client on the endpoint, with one attempt per call (requests are counted). */
    client(governance: Governance, config: Partial<GovernedBedrockRuntimeClientConfig> = {}): GovernedBedrockRuntimeClient {
      const endpoint = this.server;
      const created = new GovernedBedrockRuntimeClient({
        endpoint: endpoint.url,
        region: endpoint.region,
        credentials: endpoint.credentials,
        maxAttempts: 1,
        ...config,
        governance,
      });
      clients.push(created);
      return created;
    },
  };
}
