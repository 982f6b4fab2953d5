/**
 * Masks what looks like a credential in text that came from code we do not own (a credentials or
 * region provider's error message) before it goes into a decision, a span or a log: an access key
 * id, a JSON Web Token, a long run of mixed-case letters and digits (a secret access key, a session
 * token). A message saying which profile, file or role failed keeps those words.
 */

const ACCESS_KEY_ID = /\b(?:AKIA|ASIA|AROA|AIDA|AGPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{12,}\b/g;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const LONG_RUN = /[A-Za-z0-9+/=_-]{32,}/g;
/** Longer than any message worth reading; the rest is cut. */
const MAX_CHARS = 1000;

/**
 * `text` with credential-shaped parts replaced by `[masked]`, cut to 1,000 characters.
 *
 * @example
 * ```ts
 * maskSecretShapes("bad key AKIAIOSFODNN7EXAMPLE for profile dev"); // "bad key [masked] for profile dev"
 * ```
 */
export function maskSecretShapes(text: string): string {
  const bounded = text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS)}… (cut)` : text;
  return bounded
    .replace(JWT, "[masked]")
    .replace(ACCESS_KEY_ID, "[masked]")
    .replace(LONG_RUN, (run) => (/[a-z]/.test(run) && /[A-Z]/.test(run) && /[0-9]/.test(run) ? "[masked]" : run));
}
