import { describe, expect, it } from 'vitest';
import { redirectUriProblem } from '../../src/oauth/client-metadata.js';
import { parseClientMetadata } from '../support/clients.js';
import { OAuthError } from '../../src/oauth/errors.js';
import { OutboundPolicy } from '../../src/platform/outbound/policy.js';

function errorOf(input: unknown, options?: Parameters<typeof parseClientMetadata>[1]): { error: string; error_description: string } | undefined {
  try {
    parseClientMetadata(input, options);
    return undefined;
  } catch (err) {
    if (err instanceof OAuthError) return err.toJSON();
    throw err;
  }
}

describe('redirect URI rules', () => {
  it('accepts https, http on loopback, and reverse-domain private-use schemes (RFC 8252)', () => {
    for (const uri of ['https://app.example.com/cb', 'https://app.example.com/cb?x=1', 'http://127.0.0.1/cb', 'http://127.0.0.1:8123/cb', 'http://[::1]:9000/cb', 'http://localhost:3000/cb', 'com.example.app:/oauth2redirect']) {
      expect(redirectUriProblem(uri), uri).toBeUndefined();
    }
  });

  it('refuses plain http, fragments, wildcards, relative URIs, dangerous and dot-less custom schemes', () => {
    expect(redirectUriProblem('http://app.example.com/cb')).toBe('http is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https');
    expect(redirectUriProblem('https://app.example.com/cb#x')).toBe('must not contain a fragment (RFC 6749 §3.1.2)');
    expect(redirectUriProblem('https://*.example.com/cb')).toBe('must not contain wildcards');
    expect(redirectUriProblem('/cb')).toBe('must be an absolute URI');
    expect(redirectUriProblem('javascript:alert(1)')).toBe('the javascript: scheme is not allowed');
    expect(redirectUriProblem('myapp:/cb')).toBe('a private-use scheme must be a reverse domain name containing a dot (RFC 8252 §7.1), e.g. com.example.app');
  });
});

describe('localhost in redirect URIs (RFC 8252 §8.3: NOT RECOMMENDED)', () => {
  const PUBLIC = { issuer: 'https://id.example.com' };

  it('is accepted by a server whose issuer is on loopback (development)', () => {
    for (const issuer of ['http://localhost:8080', 'http://127.0.0.1:8080', 'http://[::1]:8080', 'https://localhost']) {
      expect(errorOf({ redirect_uris: ['http://localhost:3000/cb'], post_logout_redirect_uris: ['http://localhost:3000/'] }, { issuer }), issuer).toBeUndefined();
    }
  });

  it('is refused elsewhere, in a redirect or post-logout URI, http or https, naming the IP literals to use instead', () => {
    expect(errorOf({ redirect_uris: ['http://localhost:3000/cb'] }, PUBLIC)).toEqual({
      error: 'invalid_redirect_uri',
      error_description: 'redirect_uris: http://localhost:3000/cb: localhost is NOT RECOMMENDED in a loopback redirect URI (RFC 8252 §8.3) and is accepted only when the issuer is on loopback; use http://127.0.0.1:3000/cb or http://[::1]:3000/cb',
    });
    expect(errorOf({ redirect_uris: ['https://app.example.com/cb'], post_logout_redirect_uris: ['HTTP://LocalHost/bye'] }, PUBLIC)).toEqual({
      error: 'invalid_redirect_uri',
      error_description: 'post_logout_redirect_uris: HTTP://LocalHost/bye: localhost is NOT RECOMMENDED in a loopback redirect URI (RFC 8252 §8.3) and is accepted only when the issuer is on loopback; use HTTP://127.0.0.1/bye or HTTP://[::1]/bye',
    });
    expect(errorOf({ redirect_uris: ['https://localhost:8443/cb'] }, PUBLIC)?.error).toBe('invalid_redirect_uri');
  });

  it('leaves IP literals, other hosts and private-use schemes alone', () => {
    expect(errorOf({ redirect_uris: ['http://127.0.0.1:3000/cb', 'http://[::1]/cb', 'https://localhost.example.com/cb', 'com.example.app://localhost/cb'] }, PUBLIC)).toBeUndefined();
  });

  it('keeps a localhost URI the client already has: only new ones are refused', () => {
    const registeredRedirectUris = ['http://localhost:3000/cb'];
    expect(errorOf({ redirect_uris: ['http://localhost:3000/cb', 'https://app.example.com/cb'] }, { ...PUBLIC, registeredRedirectUris })).toBeUndefined();
    expect(errorOf({ redirect_uris: ['http://localhost:3000/cb', 'http://localhost:4000/cb'] }, { ...PUBLIC, registeredRedirectUris })?.error_description)
      .toMatch(/^redirect_uris: http:\/\/localhost:4000\/cb: localhost is NOT RECOMMENDED/);
  });
});

describe('client metadata (RFC 7591 §2)', () => {
  it('fills in the defaults', () => {
    expect(parseClientMetadata({ redirect_uris: ['https://a.example.com/cb'] })).toEqual({
      redirect_uris: ['https://a.example.com/cb'], post_logout_redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'], response_types: ['code'], scope: '', resources: [], skip_consent: false,
      require_pushed_authorization_requests: false,
    });
    expect(parseClientMetadata({ grant_types: ['client_credentials'] }).response_types).toEqual([]);
  });

  it('answers invalid_redirect_uri for a bad redirect or post-logout URI', () => {
    expect(errorOf({ redirect_uris: ['http://evil.example.com/cb'] })).toEqual({
      error: 'invalid_redirect_uri',
      error_description: 'redirect_uris: http://evil.example.com/cb: http is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https',
    });
    expect(errorOf({ redirect_uris: ['https://a.example.com/cb'], post_logout_redirect_uris: ['https://a.example.com/#x'] })?.error).toBe('invalid_redirect_uri');
  });

  it.each([
    [{ grant_types: ['password'] }, /^grant_types\.0: /],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_jwt' }, /^token_endpoint_auth_method: /],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, /^client_credentials requires a confidential client/],
    [{ grant_types: ['authorization_code'] }, /^authorization_code requires at least one redirect_uri$/],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt' }, /^private_key_jwt requires jwks or jwks_uri$/],
    [{ grant_types: ['client_credentials'], jwks_uri: 'https://a.example.com/jwks', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] } }, /^jwks and jwks_uri must not both be present/],
    [{ grant_types: ['client_credentials'], jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, /^jwks\.keys\.0\.kty: /],
    [{ grant_types: ['client_credentials'], jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'private' }] } }, /must hold public keys only/],
    [{ grant_types: ['client_credentials'], jwks_uri: 'http://keys.example.com/jwks' }, /^jwks_uri: must be an https URL/],
    [{ grant_types: ['client_credentials'], scope: 'a "b' }, /^scope: must be scope tokens/],
    [{ grant_types: ['client_credentials'], scope: 'a b', default_scope: 'a c' }, /^default_scope must be within scope \(not allowed: c\)$/],
    [{ grant_types: ['client_credentials'], resources: ['relative/path'] }, /^resources\.0: each resource must be an absolute URI/],
    [{ grant_types: ['client_credentials'], resources: ['https://api.example.com#x'] }, /^resources\.0: /],
    [{ grant_types: ['client_credentials'], response_types: ['code'] }, /^response_types: /],
    [{ grant_types: ['client_credentials'], logo_uri: 'ftp://x' }, /^logo_uri: /],
    [{ grant_types: ['client_credentials'], access_token_ttl: 5 }, /^access_token_ttl: /],
    [{ grant_types: ['client_credentials'], client_nmae: 'typo' }, /^metadata: Unrecognized key/],
    [[], /^client metadata must be a JSON object$/],
  ])('answers invalid_client_metadata for %j', (input, description) => {
    const err = errorOf(input);
    expect(err?.error).toBe('invalid_client_metadata');
    expect(err?.error_description).toMatch(description);
  });

  it('ignores unknown members when asked to (RFC 7591 §2, registration endpoint)', () => {
    expect(errorOf({ grant_types: ['client_credentials'], software_statement_x: 'y' }, { ignoreUnknown: true })).toBeUndefined();
  });
});

describe('the URIs the server sends requests to: jwks_uri, backchannel_logout_uri (the outbound fetcher\'s rule)', () => {
  const https = new OutboundPolicy({ issuer: 'https://id.example.com', allowed: [] });
  const loopback = new OutboundPolicy({ issuer: 'http://localhost:8080', allowed: [] });
  const allowing = new OutboundPolicy({ issuer: 'http://localhost:8080', allowed: ['127.0.0.1', '10.1.0.0/16', 'keys.corp.example'] });
  const member = (name: string, uri: string) => (name === 'jwks_uri'
    ? { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: uri }
    : { redirect_uris: ['https://a.example.com/cb'], backchannel_logout_uri: uri });

  for (const name of ['jwks_uri', 'backchannel_logout_uri']) {
    it(`${name}: https anywhere public; refused, naming the member, on an internal address or the wrong scheme`, () => {
      for (const outbound of [https, loopback]) {
        expect(errorOf(member(name, 'https://keys.example.com/x'), { outbound })).toBeUndefined();
      }
      for (const [uri, outbound, problem] of [
        ['http://keys.example.com/x', https, 'must be an https URL'],
        ['http://127.0.0.1:9000/x', https, 'must be an https URL'],
        ['http://keys.example.com/x', loopback, 'must be an https URL (http only on loopback)'],
        ['not a url', loopback, 'must be an https URL (http only on loopback)'],
        ['https://user:pw@keys.example.com/x', https, 'must not contain credentials'],
        ['http://127.0.0.1:9000/x', loopback, 'must not point at an internal address (127.0.0.1 is loopback)'],
        ['http://2130706433/x', loopback, 'must not point at an internal address (127.0.0.1 is loopback)'],
        ['http://localhost:9000/x', loopback, 'must not point at an internal address (localhost is loopback)'],
        ['http://[::1]/x', loopback, 'must not point at an internal address (::1 is loopback)'],
        ['https://[::ffff:a9fe:a9fe]/latest/meta-data', https, 'must not point at an internal address (::ffff:a9fe:a9fe is link-local)'],
        ['https://0xa9fea9fe/latest/meta-data', https, 'must not point at an internal address (169.254.169.254 is link-local)'],
        ['https://10.1.2.3/x', https, 'must not point at an internal address (10.1.2.3 is private)'],
        ['https://10.2.0.1/x', allowing, 'must not point at an internal address (10.2.0.1 is private)'],
      ] as const) {
        expect(errorOf(member(name, uri), { outbound }), `${uri} ${outbound.httpOnLoopback}`).toEqual({ error: 'invalid_client_metadata', error_description: `${name}: ${problem}` });
      }
    });

    it(`${name}: an internal target the operator allows (OUTBOUND_ALLOWED_HOSTS) is accepted`, () => {
      for (const uri of ['http://127.0.0.1:9000/x', 'http://localhost:9000/x', 'https://10.1.2.3/x', 'https://keys.corp.example/x']) {
        expect(errorOf(member(name, uri), { outbound: allowing }), uri).toBeUndefined();
      }
    });
  }
});
