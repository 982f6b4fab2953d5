/**
 * The RFC 8693 `act` (actor) claim: a token issued to one party to act on behalf of another.
 *
 * ```json
 * { "sub": "alice@acme.example",
 *   "act": { "sub": "spiffe://acme.example/agents/invoice",
 *            "act": { "sub": "https://gateway.acme.example" } } }
 * ```
 * The outermost `act` is the current actor; nested ones are prior actors (RFC 8693 §4.1). The
 * workload a governed call acts as is the current actor, and the chain is evidence.
 * @module
 */
import type { JWTPayload } from "jose";
import { TokenVerificationError } from "../errors.js";
import type { DelegationChain } from "./authentication.js";
import { isCleanText } from "../validation.js";

/**
 * The default bound on `act` nesting: real chains are one or two deep.
 *
 * @example
 * ```ts
 * createTokenVerifier({ ...options, acceptDelegation: true, maxDelegationDepth: DEFAULT_MAX_DELEGATION_DEPTH / 2 });
 * ```
 */
export const DEFAULT_MAX_DELEGATION_DEPTH = 8;

const MAX_SUBJECT_LENGTH = 2048;

/**
 * Reads the delegation chain of verified claims. Call it only on claims whose signature has been
 * checked: it says who acts, it does not prove it.
 *
 * Every level must be an object with a string `sub` and, optionally, a string `iss`; other members
 * (RFC 8693 allows e.g. `client_id`) are ignored. The chain is read iteratively, so a hostile
 * nesting depth costs at most `maxDepth + 1` steps.
 *
 * @throws {@link TokenVerificationError} `"malformed"` for a malformed level, `"delegation-too-deep"`
 *   beyond `maxDepth` levels. Messages name the level, never a claim value.
 * @example
 * ```ts
 * const chain = delegationChainOf({ sub: "alice", act: { sub: "agent", act: { sub: "gateway" } } });
 * // { depth: 2, actors: [{ subject: "gateway" }, { subject: "agent" }], onBehalfOf: "alice" }
 * currentActor(chain); // "agent"
 * ```
 */
export function delegationChainOf(claims: JWTPayload, maxDepth: number = DEFAULT_MAX_DELEGATION_DEPTH): DelegationChain {
  const outermostFirst: { subject: string; issuer?: string }[] = [];
  let level: unknown = claims.act;
  while (level !== undefined) {
    const where = outermostFirst.length === 0 ? "the `act` claim" : `the \`act\` claim at depth ${outermostFirst.length + 1}`;
    if (outermostFirst.length >= maxDepth) {
      throw new TokenVerificationError(
        "delegation-too-deep",
        `Token refused: its delegation chain (\`act\`) is deeper than ${maxDepth} levels; ` +
          "shorten the chain of token exchanges, or raise maxDelegationDepth if this depth is expected",
      );
    }
    if (typeof level !== "object" || level === null || Array.isArray(level)) {
      throw malformed(`${where} is not an object`);
    }
    const { sub, iss, act } = level as { sub?: unknown; iss?: unknown; act?: unknown };
    if (typeof sub !== "string") throw malformed(`${where} has no string \`sub\``);
    if (!isCleanText(sub, MAX_SUBJECT_LENGTH)) throw malformed(`the \`sub\` of ${where} is empty, too long or contains control characters`);
    if (iss !== undefined && (typeof iss !== "string" || !isCleanText(iss, MAX_SUBJECT_LENGTH))) {
      throw malformed(`the \`iss\` of ${where} is not a non-empty string without control characters`);
    }
    outermostFirst.push(iss === undefined ? { subject: sub } : { subject: sub, issuer: iss });
    level = act;
  }
  if (outermostFirst.length === 0) return Object.freeze({ depth: 0, actors: Object.freeze([]) });
  if (typeof claims.sub !== "string") throw malformed("a delegated token has no string `sub` (on whose behalf)");
  return Object.freeze({
    depth: outermostFirst.length,
    actors: Object.freeze(outermostFirst.reverse().map((actor) => Object.freeze(actor))),
    onBehalfOf: claims.sub,
  });
}

/**
 * The subject acting now: the last actor of a delegated chain, else `undefined` (the token's
 * subject acts for itself).
 *
 * @example
 * ```ts
 * const id = currentActor(chain) ?? claims.sub;
 * ```
 */
export function currentActor(chain: DelegationChain): string | undefined {
  return chain.actors.at(-1)?.subject;
}


function malformed(what: string): TokenVerificationError {
  return new TokenVerificationError(
    "malformed",
    `Token refused: ${what}; each \`act\` level must be an object with a string \`sub\` and an optional string \`iss\` (RFC 8693 §4.1)`,
  );
}
