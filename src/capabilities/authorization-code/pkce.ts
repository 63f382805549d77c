import { createHash } from 'node:crypto';

/**
 * PKCE (RFC 7636), S256 only: OAuth 2.1 requires it for every client (RFC 9700 §2.1.1's one
 * exception, a confidential OpenID Connect client relying on its nonce, only when an
 * administrator grants it: require_pkce false), and `plain` would put the verifier itself in
 * the front channel.
 */
export const CODE_CHALLENGE_METHODS = ['S256'] as const;

/** RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters. */
export const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** RFC 7636 §4.1: code_verifier = 43*128unreserved. */
export const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/** The S256 challenge of a verifier (RFC 7636 §4.2). */
export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}
