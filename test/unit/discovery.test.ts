import { describe, expect, it } from 'vitest';
import { DiscoveryRegistry } from '../../src/oauth/discovery.js';

describe('discovery registry', () => {
  it('merges contributions, uniting arrays', () => {
    const r = new DiscoveryRegistry();
    r.contribute(() => ({ issuer: 'https://id.example.com', grant_types_supported: ['client_credentials'] }));
    r.contribute(() => ({ token_endpoint: 'https://id.example.com/token', grant_types_supported: ['authorization_code', 'client_credentials'] }));
    expect(r.build()).toEqual({
      issuer: 'https://id.example.com',
      token_endpoint: 'https://id.example.com/token',
      grant_types_supported: ['client_credentials', 'authorization_code'],
    });
  });

  it('refuses two capabilities claiming one member with different values', () => {
    const r = new DiscoveryRegistry();
    r.contribute(() => ({ token_endpoint: 'https://a/token' }));
    r.contribute(() => ({ token_endpoint: 'https://b/token' }));
    expect(() => r.build()).toThrow('discovery member token_endpoint contributed twice with different values');
  });
});
