import { describe, expect, it } from 'vitest';
import { prefersJwtResponse } from '../../src/capabilities/introspection/introspect.js';

describe('RFC 9701 §4: when the Accept header asks for a JWT introspection response', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['application/json', false],
    ['*/*', false],
    ['application/token-introspection+jwt', true],
    ['APPLICATION/TOKEN-INTROSPECTION+JWT', true],
    ['application/token-introspection+jwt; charset=utf-8', true],
    // Equal weights: the JWT only when named, and ahead of application/json.
    ['application/token-introspection+jwt, application/json', true],
    ['application/json, application/token-introspection+jwt', false],
    ['application/token-introspection+jwt, */*', true],
    ['application/*, application/token-introspection+jwt', true],
    // Weights decide first; the most specific range gives a type its weight.
    ['application/json;q=0.5, application/token-introspection+jwt', true],
    ['application/token-introspection+jwt;q=0.5, application/json', false],
    ['application/token-introspection+jwt;q=0.5, */*', false],
    ['*/*;q=0.1, application/token-introspection+jwt;q=0.2', true],
    ['application/token-introspection+jwt;q=0', false],
    ['application/token-introspection+jwt;q=0.000', false],
    ['application/token-introspection+jwt;q=1.000', true],
    // A malformed weight makes its range count for nothing.
    ['application/token-introspection+jwt;q=2', false],
    ['application/token-introspection+jwt;q=abc', false],
    ['application/token-introspection+jwt;q=0.0001', false],
    ['application/token-introspection+jwtx', false],
    ['text/application/token-introspection+jwt', false],
  ])('%j → %s', (accept, expected) => {
    expect(prefersJwtResponse(accept)).toBe(expected);
  });
});
