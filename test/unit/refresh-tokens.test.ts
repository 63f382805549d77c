import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/server/config.js';
import type { Client } from '../../src/oauth/client.js';
import { parseClientMetadata } from '../support/clients.js';
import { mayIssueRefreshToken, refreshLifetimes, SuccessorSealer } from '../../src/oauth/refresh-families/rotation.js';

const DEFAULTS = { idle: 1000, absolute: 9000, publicIdle: 100, publicAbsolute: 900 };

function client(metadata: Record<string, unknown>): Client {
  const parsed = parseClientMetadata({ redirect_uris: ['https://a.example/cb'], ...metadata });
  return {
    clientId: 'c', clientType: parsed.token_endpoint_auth_method === 'none' ? 'public' : 'confidential', metadata: parsed,
    secrets: [], disabled: false, source: 'cli', createdAt: new Date(), updatedAt: new Date(), tokensNotBefore: null, lastUsedAt: null,
  };
}

describe('refresh token rules', () => {
  it('issues a refresh token only with offline_access granted to a client registered for the refresh_token grant', () => {
    const both = client({ grant_types: ['authorization_code', 'refresh_token'] });
    expect(mayIssueRefreshToken(both, 'openid offline_access')).toBe(true);
    expect(mayIssueRefreshToken(both, 'openid')).toBe(false);
    expect(mayIssueRefreshToken(both, 'offline_accessx')).toBe(false);
    expect(mayIssueRefreshToken(client({ grant_types: ['authorization_code'] }), 'openid offline_access')).toBe(false);
  });

  it('takes lifetimes from the client, else the defaults of its type; idle never exceeds absolute', () => {
    expect(refreshLifetimes(client({}), DEFAULTS)).toEqual({ idle: 1000, absolute: 9000 });
    expect(refreshLifetimes(client({ token_endpoint_auth_method: 'none' }), DEFAULTS)).toEqual({ idle: 100, absolute: 900 });
    expect(refreshLifetimes(client({ refresh_token_idle_ttl: 60, refresh_token_absolute_ttl: 120 }), DEFAULTS)).toEqual({ idle: 60, absolute: 120 });
    expect(refreshLifetimes(client({ refresh_token_absolute_ttl: 500 }), DEFAULTS)).toEqual({ idle: 500, absolute: 500 });
  });

  it('rejects client metadata whose refresh idle lifetime exceeds its absolute one', () => {
    expect(() => client({ refresh_token_idle_ttl: 600, refresh_token_absolute_ttl: 300 })).toThrow(/refresh_token_idle_ttl must not exceed refresh_token_absolute_ttl/);
  });

  it('rejects public refresh lifetimes whose idle exceeds absolute', () => {
    expect(() => loadConfig({ REFRESH_TOKEN_PUBLIC_IDLE_TTL: '40d' })).toThrow(/REFRESH_TOKEN_PUBLIC_IDLE_TTL: must not exceed REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL/);
    expect(loadConfig({}).refreshTokenGracePeriod).toBe(30);
    expect(loadConfig({ REFRESH_TOKEN_GRACE_PERIOD: '0' }).refreshTokenGracePeriod).toBe(0);
  });

  it('seals a successor so that only the same family and generation under the same secret opens it', () => {
    const sealer = new SuccessorSealer('a-key-encryption-secret-of-32-characters!');
    const sealed = sealer.seal('family-1', 2, 'the-successor-token');
    expect(sealed.ciphertext).not.toContain('the-successor-token');
    expect(sealer.open('family-1', 2, sealed)).toBe('the-successor-token');
    expect(sealer.open('family-1', 3, sealed)).toBeUndefined();
    expect(sealer.open('family-2', 2, sealed)).toBeUndefined();
    expect(new SuccessorSealer('another-key-encryption-secret-32-chars!!').open('family-1', 2, sealed)).toBeUndefined();
  });
});
