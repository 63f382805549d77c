import { describe, expect, it } from 'vitest';
import { claimsForScopes, idTokenUserClaims, MAX_CLAIMS_PARAMETER_LENGTH, parseClaimsRequest } from '../../src/oauth/claims.js';
import { InvalidRequest } from '../../src/oauth/errors.js';

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

describe('the claims request parameter (OIDC Core §5.5)', () => {
  it('reads the userinfo and id_token members: null, essential, value and values kept', () => {
    expect(parseClaimsRequest(JSON.stringify({
      userinfo: { email: null, name: { essential: true } },
      id_token: { email_verified: { value: true }, locale: { values: ['en', 'fr'], essential: false } },
    }))).toEqual({
      userinfo: { email: null, name: { essential: true } },
      id_token: { email_verified: { value: true }, locale: { values: ['en', 'fr'], essential: false } },
    });
  });

  it('ignores unknown claim names and unknown top-level members (§5.5), and keeps an absent member absent', () => {
    expect(parseClaimsRequest(JSON.stringify({ id_token: { email: null, favourite_colour: null, sub: null, acr: { essential: true } }, future: {} })))
      .toEqual({ id_token: { email: null }, acr: { essential: true, values: [] } });
    expect(parseClaimsRequest('{}')).toEqual({});
  });

  for (const [raw, description] of [
    ['not json', 'claims must be a JSON object (OpenID Connect Core §5.5)'],
    ['[]', 'claims must be a JSON object (OpenID Connect Core §5.5)'],
    ['null', 'claims must be a JSON object (OpenID Connect Core §5.5)'],
    ['"email"', 'claims must be a JSON object (OpenID Connect Core §5.5)'],
    ['{"id_token":["email"]}', 'claims.id_token must be a JSON object'],
    ['{"userinfo":null}', 'claims.userinfo must be a JSON object'],
    ['{"id_token":{"email":true}}', 'claims.id_token.email must be null or a JSON object'],
    ['{"userinfo":{"email":{"essential":"yes"}}}', 'claims.userinfo.email.essential must be a boolean'],
    ['{"userinfo":{"locale":{"values":"en"}}}', 'claims.userinfo.locale.values must be an array'],
    ['{"id_token":{"unknown":{"essential":1}}}', 'claims.id_token.unknown.essential must be a boolean'],
  ] as const) {
    it(`${raw}: invalid_request (${description})`, () => {
      let caught: unknown;
      try { parseClaimsRequest(raw); } catch (err) { caught = err; }
      expect(caught).toBeInstanceOf(InvalidRequest);
      expect(caught).toMatchObject({ error: 'invalid_request', description });
    });
  }

  it(`longer than ${MAX_CLAIMS_PARAMETER_LENGTH} characters: invalid_request without parsing`, () => {
    expect(() => parseClaimsRequest(`{"userinfo":{"email":${' '.repeat(MAX_CLAIMS_PARAMETER_LENGTH)}null}}`)).toThrow(InvalidRequest);
  });
});

describe('the user claims an ID token carries (OIDC Core §5.4, §5.5)', () => {
  it('none without a claims request or the client option: the claims stay at UserInfo', () => {
    expect(idTokenUserClaims(alice, ['openid', 'profile', 'email'], { allScopeClaims: false })).toEqual({});
    expect(idTokenUserClaims(alice, ['openid', 'email'], { allScopeClaims: false, requested: { userinfo: { email: null } } })).toEqual({});
  });

  it('the claims the id_token member names, when their scope was granted', () => {
    expect(idTokenUserClaims(alice, ['openid', 'email', 'profile'], { allScopeClaims: false, requested: { id_token: { email: null } } }))
      .toEqual({ email: 'alice@example.com' });
  });

  it('never a claim of a scope not granted, even when requested (consent to the scope releases its claims)', () => {
    expect(idTokenUserClaims(alice, ['openid', 'profile'], { allScopeClaims: false, requested: { id_token: { email: { essential: true }, name: null } } }))
      .toEqual({ name: 'Alice Liddell' });
  });

  it('every claim of the granted scopes with id_token_scope_claims, never sub (the ID token has its own)', () => {
    expect(idTokenUserClaims(alice, ['openid', 'profile', 'email'], { allScopeClaims: true })).toEqual({
      name: 'Alice Liddell', given_name: 'Alice', locale: 'en-GB', updated_at: 1767323045, email: 'alice@example.com', email_verified: true,
    });
    expect(idTokenUserClaims(alice, ['openid'], { allScopeClaims: true })).toEqual({});
  });
});
