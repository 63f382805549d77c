import { describe, expect, it } from 'vitest';
import { mayIntrospect } from '../../src/capabilities/introspection/introspect.js';
import { testClient } from '../support/kernel.js';

describe('RFC 7662 §4: which client may learn a token\'s details', () => {
  const token = { client_id: 'web', aud: 'https://api.example.com' };

  it('the client the token was issued to', () => {
    expect(mayIntrospect(testClient('web'), token)).toBe(true);
  });

  it('a client marked introspect_any_token (a resource server), whatever the token', () => {
    expect(mayIntrospect(testClient('gateway', { introspect_any_token: true }), token)).toBe(true);
    expect(mayIntrospect(testClient('gateway', { introspect_any_token: true }), { client_id: 'x', aud: ['a', 'b'] })).toBe(true);
  });

  it('a client the token\'s aud names, alone or in a list', () => {
    expect(mayIntrospect(testClient('reports'), { client_id: 'web', aud: 'reports' })).toBe(true);
    expect(mayIntrospect(testClient('reports'), { client_id: 'web', aud: ['https://api.example.com', 'reports'] })).toBe(true);
  });

  it('nobody else: not another client, not one marked false, not one whose id only resembles an audience', () => {
    expect(mayIntrospect(testClient('other'), token)).toBe(false);
    expect(mayIntrospect(testClient('other', { introspect_any_token: false }), token)).toBe(false);
    expect(mayIntrospect(testClient('api.example.com'), { client_id: 'web', aud: ['https://api.example.com'] })).toBe(false);
  });
});
