import { describe, expect, it } from 'vitest';
import { claimsForScopes } from '../../src/oauth/claims.js';

const alice = {
  id: 'sub-1',
  email: 'alice@example.com',
  email_verified: true,
  phone_number: null,
  phone_number_verified: false,
  profile: { name: 'Alice Liddell', given_name: 'Alice', locale: 'en-GB' },
  address: { country: 'GB' },
  updated_at: new Date('2026-01-02T03:04:05Z'),
};

describe('claims released per scope (OIDC Core §5.4)', () => {
  it('releases only sub for openid alone', () => {
    expect(claimsForScopes(alice, ['openid'])).toEqual({ sub: 'sub-1' });
  });

  it('releases profile claims the user has, with updated_at as seconds', () => {
    expect(claimsForScopes(alice, ['openid', 'profile'])).toEqual({
      sub: 'sub-1', name: 'Alice Liddell', given_name: 'Alice', locale: 'en-GB', updated_at: 1767323045,
    });
  });

  it('releases email and address for their scopes, and omits phone claims the user lacks', () => {
    expect(claimsForScopes(alice, ['openid', 'email', 'address', 'phone'])).toEqual({
      sub: 'sub-1', email: 'alice@example.com', email_verified: true, address: { country: 'GB' },
    });
  });
});
