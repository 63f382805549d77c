import { describe, expect, it } from 'vitest';
import { narrowedAudience, resolveAudience } from '../../src/oauth/audience.js';
import { InvalidRequest, InvalidTarget } from '../../src/oauth/errors.js';
import { testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';
const FILES = 'https://files.example.com/v1';

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (err) { return err; }
  throw new Error('expected an error');
}

describe('the audience of a token from RFC 8707 resource parameters (§2)', () => {
  const client = testClient('c', { resources: [API, FILES] });

  it('without a resource: the client\'s first registered resource, else the issuer', () => {
    expect(resolveAudience([], client, ISSUER)).toBe(API);
    expect(resolveAudience([], testClient('d'), ISSUER)).toBe(ISSUER);
  });
  it('one resource: that resource as a string', () => {
    expect(resolveAudience([FILES], client, ISSUER)).toBe(FILES);
  });
  it('several: an array in request order, each once; one distinct value stays a string', () => {
    expect(resolveAudience([FILES, API], client, ISSUER)).toEqual([FILES, API]);
    expect(resolveAudience([FILES, API, FILES], client, ISSUER)).toEqual([FILES, API]);
    expect(resolveAudience([API, API], client, ISSUER)).toBe(API);
  });
  it('the issuer (this server\'s own resource, UserInfo) is always allowed', () => {
    expect(resolveAudience([ISSUER], testClient('d'), ISSUER)).toBe(ISSUER);
    expect(resolveAudience([API, ISSUER], client, ISSUER)).toEqual([API, ISSUER]);
  });
  it('an absolute URI the client did not register is invalid_target', () => {
    const err = thrown(() => resolveAudience([API, 'https://evil.example.com'], client, ISSUER));
    expect(err).toBeInstanceOf(InvalidTarget);
    expect(err).toMatchObject({ error: 'invalid_target', status: 400, description: 'resource not allowed for this client' });
    // Exact string comparison: a prefix or a trailing slash is another resource.
    for (const near of [`${API}/`, 'https://API.example.com', `${FILES}/x`]) {
      expect(() => resolveAudience([near], client, ISSUER), near).toThrow(expect.objectContaining({ description: 'resource not allowed for this client' }));
    }
  });
  it('a relative URI or one with a fragment is invalid_target (§2)', () => {
    for (const bad of ['/api', 'api.example.com', `${API}#frag`, '']) {
      expect(() => resolveAudience([bad], client, ISSUER), bad).toThrow(expect.objectContaining({
        error: 'invalid_target', description: 'resource must be an absolute URI without a fragment (RFC 8707 §2)',
      }));
    }
  });
  it('at most ten resource parameters, else invalid_request', () => {
    expect(resolveAudience(Array<string>(10).fill(API), client, ISSUER)).toBe(API);
    const err = thrown(() => resolveAudience(Array<string>(11).fill(API), client, ISSUER));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ error: 'invalid_request', description: 'too many resource parameters' });
  });
});

describe('narrowing the audience on a token request (RFC 8707 §2.2)', () => {
  const REFUSED = 'resource was not granted';

  it('without a resource: the whole audience granted, as it was', () => {
    expect(narrowedAudience([], API, REFUSED)).toBe(API);
    const granted = [API, FILES];
    expect(narrowedAudience([], granted, REFUSED)).toBe(granted);
  });
  it('narrows to some of the granted resources (one: a string)', () => {
    expect(narrowedAudience([FILES], [API, FILES], REFUSED)).toBe(FILES);
    expect(narrowedAudience([FILES, API, FILES], [API, FILES], REFUSED)).toEqual([FILES, API]);
    expect(narrowedAudience([API], API, REFUSED)).toBe(API);
  });
  it('never names another resource: invalid_target with the caller\'s description', () => {
    const err = thrown(() => narrowedAudience([API, ISSUER], [API, FILES], REFUSED));
    expect(err).toBeInstanceOf(InvalidTarget);
    expect(err).toMatchObject({ error: 'invalid_target', description: REFUSED });
    expect(() => narrowedAudience([FILES], API, 'other words')).toThrow(expect.objectContaining({ description: 'other words' }));
  });
});
