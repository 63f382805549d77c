import { describe, expect, it } from 'vitest';
import { migrations as released } from '../../migrations/index.js';
import { CAPABILITIES, GRANT_TYPES, MIGRATIONS } from '../../src/server/capabilities.js';
import { parseClientMetadata } from '../support/clients.js';
import { SLICES } from '../../src/server/config.js';

describe('the capability table (src/server/capabilities.ts)', () => {
  it('names each capability once', () => {
    const names = CAPABILITIES.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('derives the grant types from the capabilities that declare them, in table order (RFC 8414 §2 grant_types_supported)', () => {
    expect(GRANT_TYPES.grantTypes()).toEqual(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:device_code']);
    expect(GRANT_TYPES.get('client_credentials')?.publicClients).toBe(false);
    expect(GRANT_TYPES.get('authorization_code')?.publicClients).toBe(true);
  });

  it('lets a client register only a grant type some capability serves (RFC 7591 §2)', () => {
    expect(() => parseClientMetadata({ grant_types: ['urn:ietf:params:oauth:grant-type:saml2-bearer'] }))
      .toThrow('grant_types.0: Invalid option: expected one of "authorization_code"|"refresh_token"|"client_credentials"|"urn:ietf:params:oauth:grant-type:token-exchange"|"urn:ietf:params:oauth:grant-type:jwt-bearer"|"urn:ietf:params:oauth:grant-type:device_code"');
    expect(parseClientMetadata({ grant_types: ['client_credentials'] }).grant_types).toEqual(['client_credentials']);
  });

  it('composes every capability\'s settings into the configuration (src/server/config.ts lists each slice once)', () => {
    const missing = CAPABILITIES.filter((c) => c.settings !== undefined && !(SLICES as readonly unknown[]).includes(c.settings)).map((c) => c.name);
    expect(missing).toEqual([]);
    expect(CAPABILITIES.filter((c) => c.settings !== undefined).map((c) => c.name))
      .toEqual(['authorization-code', 'userinfo', 'refresh-token', 'token-exchange', 'device-authorization', 'introspection', 'revocation', 'registration', 'admin', 'login', 'mfa', 'logout', 'demo']);
  });

  it('runs the released migrations and the capabilities\' own in name order, each once', () => {
    const names = MIGRATIONS.map((m) => m.name);
    expect(names).toEqual([...names].sort());
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => released.some((m) => m.name === n))).toEqual(released.map((m) => m.name));
  });
});
