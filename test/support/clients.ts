import type { AppContext } from '../../src/server/context.js';
import { ClientRegistry, type CreatedClient } from '../../src/oauth/clients/registry.js';
import { parseClientMetadata as parseWith, type ClientMetadata } from '../../src/oauth/client-metadata.js';
import { ClientRepository } from '../../src/oauth/clients/store.js';
import { OutboundPolicy } from '../../src/platform/outbound/policy.js';
import { GRANT_TYPES } from '../../src/server/capabilities.js';

/** The manual clock of test/support/clock.ts, under the name these tests use. */
export { ManualClock as TestClock } from './clock.js';

/** The client registry of an app, as the CLI would use it. */
export function registryOf(context: AppContext): ClientRegistry {
  return new ClientRegistry(new ClientRepository(context.store.db, context.store.notifier), context.audit, context.clock, { grantTypes: GRANT_TYPES, issuer: context.config.issuer, outbound: context.outbound.policy });
}

export async function createClient(context: AppContext, metadata: Record<string, unknown>, clientId?: string): Promise<CreatedClient> {
  return registryOf(context).create(metadata, { source: 'cli', ...(clientId ? { clientId } : {}) });
}

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export const form = (params: Record<string, string | string[]>) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const value of Array.isArray(v) ? v : [v]) search.append(k, value);
  return search.toString();
};

export const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' };

/** Waits until `check` holds (LISTEN/NOTIFY delivery is asynchronous). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The outbound policy of the test configuration (ISSUER http://localhost:8080, nothing allow-listed). */
export const TEST_OUTBOUND_POLICY = new OutboundPolicy({ issuer: 'http://localhost:8080', allowed: [] });

/**
 * Client metadata validation (src/oauth/client-metadata.ts) against this server's grant types, as
 * the registry does it; by default for the tests' loopback issuer and its outbound policy.
 */
export function parseClientMetadata(
  input: unknown,
  options: { ignoreUnknown?: boolean; issuer?: string; registeredRedirectUris?: readonly string[]; outbound?: OutboundPolicy } = {},
): ClientMetadata {
  return parseWith(input, { issuer: 'http://localhost:8080', outbound: TEST_OUTBOUND_POLICY, ...options, grantTypes: GRANT_TYPES });
}
