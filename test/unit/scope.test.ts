import { describe, expect, it } from 'vitest';
import { InvalidScope } from '../../src/oauth/errors.js';
import { grantedScope, isScopeToken, narrowedScope, scopeList } from '../../src/oauth/scope.js';
import { testClient } from '../support/kernel.js';

/** The error `fn` throws (fails the test when it throws none). */
function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (err) { return err; }
  throw new Error('expected an error');
}

describe('scope-token syntax (RFC 6749 §3.3)', () => {
  it('accepts %x21 / %x23-5B / %x5D-7E, at least one character', () => {
    for (const t of ['openid', '!', '#', '[', ']', '~', 'urn:example:read', 'a/b?c=d&e', 'A-Z_0.9']) expect(isScopeToken(t), t).toBe(true);
  });
  it('refuses the empty token, space, DQUOTE, backslash, controls, DEL and non-ASCII', () => {
    for (const t of ['', ' ', 'a b', '"', 'a"b', '\\', 'a\\b', '\t', '\u0000', '\x7f', 'é', 'scope\n']) expect(isScopeToken(t), JSON.stringify(t)).toBe(false);
  });
});

describe('scope lists', () => {
  it('splits on spaces, dropping empty tokens; none for an empty or absent scope', () => {
    expect(scopeList(undefined)).toEqual([]);
    expect(scopeList('')).toEqual([]);
    expect(scopeList('openid email')).toEqual(['openid', 'email']);
    expect(scopeList(' a  b ')).toEqual(['a', 'b']);
  });
});

describe('the scope granted for a request (RFC 6749 §3.3)', () => {
  const client = testClient('c', { scope: 'openid email profile offline_access' });

  it('grants the requested scope when every token is allowed, in request order', () => {
    expect(grantedScope('email openid', client)).toBe('email openid');
    expect(grantedScope('profile', client)).toBe('profile');
  });
  it('removes repeated tokens, keeping the first occurrence', () => {
    expect(grantedScope('email openid email', client)).toBe('email openid');
  });
  it('without a scope parameter, grants default_scope, else every allowed scope', () => {
    expect(grantedScope(undefined, client)).toBe('openid email profile offline_access');
    expect(grantedScope(undefined, testClient('d', { scope: 'openid email profile', default_scope: 'openid' }))).toBe('openid');
    expect(grantedScope(undefined, testClient('e'))).toBe('');
  });
  it('is invalid_scope for a token the client is not allowed, naming each once', () => {
    const err = thrown(() => grantedScope('openid admin write admin', client));
    expect(err).toBeInstanceOf(InvalidScope);
    expect(err).toMatchObject({ error: 'invalid_scope', status: 400, description: 'scope not allowed for this client: admin write' });
  });
  it('names at most 200 characters of the refused tokens', () => {
    const many = Array.from({ length: 50 }, (_, i) => `unknown-scope-${i}`).join(' ');
    const err = thrown(() => grantedScope(many, client)) as InvalidScope;
    expect(err.description).toBe(`scope not allowed for this client: ${many.slice(0, 200)}`);
  });
  it('is invalid_scope for anything but scope-tokens separated by single spaces', () => {
    for (const bad of ['openid  email', ' openid', 'openid ', '', 'open"id', 'openid\temail']) {
      expect(() => grantedScope(bad, client), JSON.stringify(bad)).toThrow(expect.objectContaining({
        error: 'invalid_scope', description: 'scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)',
      }));
    }
  });
  it('allows nothing to a client registered with no scope', () => {
    expect(() => grantedScope('openid', testClient('f'))).toThrow(expect.objectContaining({ description: 'scope not allowed for this client: openid' }));
  });
});

describe('narrowing the scope on refresh (RFC 6749 §6)', () => {
  it('is the scope originally granted when none is requested', () => {
    expect(narrowedScope(undefined, 'openid email')).toBe('openid email');
    expect(narrowedScope(undefined, '')).toBe('');
  });
  it('may narrow to any subset, in request order, duplicates removed', () => {
    expect(narrowedScope('email', 'openid email profile')).toBe('email');
    expect(narrowedScope('profile openid profile', 'openid email profile')).toBe('profile openid');
    expect(narrowedScope('openid email profile', 'openid email profile')).toBe('openid email profile');
  });
  it('never widens: a token not granted is invalid_scope', () => {
    expect(() => narrowedScope('openid phone', 'openid email')).toThrow(expect.objectContaining({
      error: 'invalid_scope', description: 'scope exceeds the scope originally granted (RFC 6749 §6): phone',
    }));
    expect(() => narrowedScope('openid', '')).toThrow(expect.objectContaining({
      description: 'scope exceeds the scope originally granted (RFC 6749 §6): openid',
    }));
  });
  it('is invalid_scope for a malformed scope', () => {
    expect(() => narrowedScope('openid  email', 'openid email')).toThrow(expect.objectContaining({
      error: 'invalid_scope', description: 'scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)',
    }));
  });
});
