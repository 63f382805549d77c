import { createHash, randomBytes } from 'node:crypto';
import { UserRepository, type User } from '../../src/users/user-store.js';
import { createPasswordHasher } from '../../src/users/passwords.js';
import type { AppContext } from '../../src/server/context.js';

/** argon2 parameters cheap enough for tests (the app is configured with the same). */
export const FAST_ARGON2 = { ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' };
export const PASSWORD = 'correct horse battery staple';

/** A PKCE pair (RFC 7636): a random verifier and its S256 challenge. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Creates a user with PASSWORD and some profile claims. */
export async function createUser(context: AppContext, username: string, extra: Partial<Parameters<UserRepository['create']>[0]> = {}): Promise<User> {
  const hasher = await createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1, minLength: 12 });
  return new UserRepository(context.store.db).create({
    username,
    email: `${username}@example.com`,
    email_verified: true,
    profile: { name: `${username[0]!.toUpperCase()}${username.slice(1)} Example`, locale: 'en' },
    password_hash: await hasher.hash(PASSWORD),
    ...extra,
  }, context.clock.now());
}

/** The query of an authorization request URL. */
export function authorizeQuery(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, v);
  return q.toString();
}

/** The response parameters a redirect carried (query), as an object. */
export function redirectParams(location: string | undefined): Record<string, string> {
  if (!location) throw new Error('no Location header');
  return Object.fromEntries(new URL(location).searchParams);
}
