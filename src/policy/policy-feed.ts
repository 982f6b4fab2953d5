/**
 * One source reloads a governance's policies by itself at a time: a directory watcher and a
 * periodic Verified Permissions sync (or two of either) on one governance would each replace the
 * other's set on their next reload, the deciding set flipping between them.
 */

import { ConfigurationError } from "../errors.js";
import type { Governance } from "../governance.js";

const feeds = new WeakMap<Governance, { source: string }>();

/**
 * Registers `source` as the one keeping `governance`'s policies; returns its release (idempotent).
 * @throws {@link ConfigurationError} when another source already keeps them.
 */
export function claimPolicyFeed(governance: Governance, source: string): () => void {
  const holder = feeds.get(governance);
  if (holder !== undefined) {
    throw new ConfigurationError(
      `${source} cannot keep this governance's policies: ${holder.source} already does, and each would replace the other's set on its next reload. ` +
        "Close that one first, or give each source its own governance",
    );
  }
  const claim = { source };
  feeds.set(governance, claim);
  return () => {
    if (feeds.get(governance) === claim) feeds.delete(governance);
  };
}
