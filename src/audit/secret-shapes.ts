/**
 * Masks what looks like a credential in text that came from code we do not own (a credentials or
 * region provider's error message, STS's) before it goes into a decision, a span or a log: an
 * access key id, a JSON Web Token, a secret access key (40 base64 characters standing alone), a
 * session token (a hundred or more base64 characters). Names made of words joined by `-`, `_` or
 * `.` — a profile, a role, a path — keep their words, so the message still says what to change.
 */

const ACCESS_KEY_ID = /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
/** Exactly 40 base64 characters, not part of a longer run (nor of a word joined by `-` or `_`). */
const SECRET_ACCESS_KEY = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=_-])/g;
const LONG_TOKEN = /[A-Za-z0-9+/=_-]{100,}/g;
/** A secret written URL-encoded or JSON-escaped is read as the characters it stands for. */
const ENCODED = /%2F|%2B|%3D|\\\//gi;
const DECODED: Readonly<Record<string, string>> = { "%2f": "/", "%2b": "+", "%3d": "=", "\\/": "/" };
/** Longer than any message worth reading; the rest is cut (after masking, so no secret is cut in two). */
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
  const masked = text
    .replace(ENCODED, (code) => DECODED[code.toLowerCase()] ?? code)
    .replace(JWT, "[masked]")
    .replace(ACCESS_KEY_ID, "[masked]")
    .replace(SECRET_ACCESS_KEY, (run) => (mixed(run) ? "[masked]" : run))
    .replace(LONG_TOKEN, (run) => (mixed(run) ? "[masked]" : run));
  return masked.length > MAX_CHARS ? `${masked.slice(0, MAX_CHARS)}… (cut)` : masked;
}

/** Upper and lower case letters and digits: random, not a word or a number. */
function mixed(run: string): boolean {
  return /[a-z]/.test(run) && /[A-Z]/.test(run) && /[0-9]/.test(run);
}
