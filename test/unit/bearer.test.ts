import { describe, expect, it } from 'vitest';
import { bearerToken, credentialChecker } from '../../src/server/http/bearer.js';

describe('bearer credentials', () => {
  it('reads the credential of a Bearer header, case-insensitively', () => {
    expect(bearerToken('Bearer abc.def-ghi_~+/=')).toBe('abc.def-ghi_~+/=');
    expect(bearerToken('bearer $ecret!value')).toBe('$ecret!value');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('accepts any configured credential and nothing else', () => {
    const check = credentialChecker(['first-credential-0123456789abcdef', 'second-credential-0123456789abcdef']);
    expect(check('first-credential-0123456789abcdef')).toBe(true);
    expect(check('second-credential-0123456789abcdef')).toBe(true);
    expect(check('first-credential-0123456789abcde')).toBe(false);
    expect(check(undefined)).toBe(false);
    expect(credentialChecker([])('anything')).toBe(false);
  });
});
