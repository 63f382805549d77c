import { createLocalJWKSet, jwtVerify, SignJWT, type JWTVerifyResult } from 'jose';
import { epochSeconds, type Clock } from '../../src/platform/clock.js';
import type { KeyRing } from '../../src/platform/keys/keyring.js';
import { KeyManager } from '../../src/platform/keys/manager.js';
import type { App } from '../../src/server/app.js';

export const TEST_KEY_SECRET = 'test-key-encryption-secret-0123456789abcdef';

/** The app's key ring as the key manager it is (tests drive its timer work by hand). */
export function keyManagerOf(app: App): KeyManager {
  const keys = app.context.keys;
  if (!(keys instanceof KeyManager)) throw new Error('the app is not wired with the key manager');
  return keys;
}

/** A JWT as a token endpoint would sign it: active key, its kid in the header, exp = now + ttl. */
export async function signToken(keys: KeyRing, clock: Clock, ttlSeconds: number, claims: Record<string, unknown> = {}): Promise<{ token: string; kid: string; exp: number }> {
  const key = keys.signingKey();
  const iat = epochSeconds(clock);
  const token = await new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(key.privateKey);
  return { token, kid: key.kid, exp: iat + ttlSeconds };
}

/** Verifies a token the way a resource server does: against the JWKS it fetched from /jwks. */
export async function verifyThroughJwks(app: App, token: string, clock: Clock): Promise<JWTVerifyResult> {
  const res = await app.server.inject('/jwks');
  if (res.statusCode !== 200) throw new Error(`/jwks answered ${res.statusCode}`);
  return jwtVerify(token, createLocalJWKSet(JSON.parse(res.body)), { currentDate: clock.now() });
}

/** Waits (not a timing assertion: a bound on a notification) until `condition` holds. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`still not true after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
