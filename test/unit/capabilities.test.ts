import { describe, expect, it } from 'vitest';
import { migrations as released } from '../../migrations/index.js';
import { CAPABILITIES, GRANT_TYPES, MIGRATIONS, parseClientMetadata } from '../../src/server/capabilities.js';

describe('the capability table (src/server/capabilities.ts)', () => {
  it('names each capability once', () => {
    const names = CAPABILITIES.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('derives the grant types from the capabilities that declare them, in table order (RFC 8414 §2 grant_types_supported)', () => {
    expect(GRANT_TYPES.grantTypes()).toEqual(['authorization_code', 'refresh_token', 'client_credentials']);
    expect(GRANT_TYPES.get('client_credentials')?.publicClients).toBe(false);
    expect(GRANT_TYPES.get('authorization_code')?.publicClients).toBe(true);
  });

  it('lets a client register only a grant type some capability serves (RFC 7591 §2)', () => {
    expect(() => parseClientMetadata({ grant_types: ['urn:ietf:params:oauth:grant-type:device_code'] }))
      .toThrow('grant_types.0: Invalid option: expected one of "authorization_code"|"refresh_token"|"client_credentials"');
    expect(parseClientMetadata({ grant_types: ['client_credentials'] }).grant_types).toEqual(['client_credentials']);
  });

  it('runs the released migrations and the capabilities\' own in name order, each once', () => {
    const names = MIGRATIONS.map((m) => m.name);
    expect(names).toEqual([...names].sort());
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => released.some((m) => m.name === n))).toEqual(released.map((m) => m.name));
  });
});
