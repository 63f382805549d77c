import { randomBytes } from 'node:crypto';
import type { Clock } from '../../platform/clock.js';
import type { AuditLog } from '../../platform/observability/audit.js';
import type { ClientRegistry } from '../../oauth/clients/registry.js';
import type { UserRepository } from '../../users/user-store.js';
import type { PasswordHasher } from '../../users/passwords.js';

/** The demo client's id; the try-it page (src/capabilities/demo/routes.ts) is its relying party. */
export const DEMO_CLIENT_ID = 'latchkey-demo';
export const DEMO_USERNAME = 'demo';

export interface DemoCredentials {
  username: string;
  /** Shown once, on the console of the start that created it; only its argon2id hash is kept. */
  password: string;
  clientId: string;
}

/**
 * Demo data for a newcomer on the embedded store: on the very first start (no user and no
 * client yet) a demo user with a generated password and a public demo client whose redirect
 * URI is the built-in try-it page. Never on a store that already has users or clients.
 */
export async function createDemoData(
  context: { clock: Clock; audit: AuditLog; config: { issuer: string } }, deps: { users: UserRepository; registry: ClientRegistry; hasher: PasswordHasher },
): Promise<DemoCredentials | undefined> {
  const [users, clients] = await Promise.all([deps.users.list(), deps.registry.list()]);
  if (users.length > 0 || clients.length > 0) return undefined;
  const password = randomBytes(12).toString('base64url');
  const now = context.clock.now();
  await deps.users.create({
    username: DEMO_USERNAME,
    email: 'demo@example.com',
    email_verified: true,
    profile: { name: 'Demo User', given_name: 'Demo', family_name: 'User', preferred_username: DEMO_USERNAME, locale: 'en' },
    password_hash: await deps.hasher.hash(password),
  }, now);
  await deps.registry.create({
    client_name: 'Latchkey demo',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    redirect_uris: [`${context.config.issuer}/try/callback`],
    scope: 'openid profile email',
  }, { source: 'cli', clientId: DEMO_CLIENT_ID });
  context.audit.record('demo.created', { client_id: DEMO_CLIENT_ID, username: DEMO_USERNAME });
  return { username: DEMO_USERNAME, password, clientId: DEMO_CLIENT_ID };
}
