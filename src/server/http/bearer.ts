import { createHash, timingSafeEqual } from 'node:crypto';
import { OAuthError } from '../../oauth/errors.js';

/** The bearer credential of an Authorization header (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  // Configured credentials may use any printable characters, so anything without a space is taken.
  const match = /^bearer +(\S+) *$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * Checks a presented credential against configured ones by their SHA-256, in constant time
 * (every configured value is compared, lengths are equal by construction).
 */
export function credentialChecker(configured: readonly string[]): (presented: string | undefined) => boolean {
  const digests = configured.map((c) => createHash('sha256').update(c).digest());
  return (presented) => {
    if (presented === undefined) return false;
    const digest = createHash('sha256').update(presented).digest();
    let ok = false;
    for (const d of digests) if (timingSafeEqual(d, digest)) ok = true;
    return ok;
  };
}

/** RFC 6750 §3.1: 401 invalid_token with a Bearer challenge. */
export function invalidToken(realm: string, description: string): OAuthError {
  const err = new OAuthError('invalid_token', description, 401);
  err.headers['WWW-Authenticate'] = `Bearer realm="${realm}", error="invalid_token"`;
  return err;
}
