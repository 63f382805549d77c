import { describe, expect, it } from 'vitest';
import { InvalidRequest } from '../../src/oauth/errors.js';
import { formBody, readParams, readRepeatedParam } from '../../src/oauth/params.js';

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (err) { return err; }
  throw new Error('expected an error');
}

describe('request parameters (RFC 6749 §3.1, §3.2)', () => {
  it('reads only the named parameters', () => {
    expect(readParams({ grant_type: 'client_credentials', scope: 'a', other: 'x' }, ['grant_type', 'scope', 'resource'])).toEqual({ grant_type: 'client_credentials', scope: 'a' });
  });
  it('treats a parameter sent without a value as omitted', () => {
    expect(readParams({ scope: '', state: 's' }, ['scope', 'state'])).toEqual({ state: 's' });
    expect(Object.keys(readParams({ scope: '' }, ['scope']))).toEqual([]);
  });
  it('refuses a repeated parameter: invalid_request naming it', () => {
    const err = thrown(() => readParams({ scope: ['a', 'b'] }, ['scope']));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ error: 'invalid_request', status: 400, description: 'the scope parameter must not be repeated (RFC 6749 §3.1)' });
    // Even repeated with the same value, or with empty values.
    expect(() => readParams({ code: ['x', 'x'] }, ['code'])).toThrow(expect.objectContaining({ description: 'the code parameter must not be repeated (RFC 6749 §3.1)' }));
    expect(() => readParams({ code: ['', ''] }, ['code'])).toThrow(expect.objectContaining({ error: 'invalid_request' }));
  });
  it('ignores a repeated parameter it was not asked for', () => {
    expect(readParams({ resource: ['a', 'b'], scope: 's' }, ['scope'])).toEqual({ scope: 's' });
  });
  it('refuses a NUL character in a value', () => {
    expect(() => readParams({ state: 'a\u0000b' }, ['state'])).toThrow(expect.objectContaining({
      error: 'invalid_request', description: 'the state parameter must not contain a NUL character',
    }));
  });
  it('reads own properties only, never the prototype\'s', () => {
    const body = Object.create({ scope: 'inherited' }) as Record<string, string>;
    expect(readParams(body, ['scope', 'toString'])).toEqual({});
  });
});

describe('a parameter that may be repeated (RFC 8707 resource)', () => {
  it('is every value given, in order; none when absent', () => {
    expect(readRepeatedParam({}, 'resource')).toEqual([]);
    expect(readRepeatedParam({ resource: 'https://a' }, 'resource')).toEqual(['https://a']);
    expect(readRepeatedParam({ resource: ['https://b', 'https://a'] }, 'resource')).toEqual(['https://b', 'https://a']);
  });
  it('drops empty values', () => {
    expect(readRepeatedParam({ resource: '' }, 'resource')).toEqual([]);
    expect(readRepeatedParam({ resource: ['', 'https://a', ''] }, 'resource')).toEqual(['https://a']);
  });
  it('refuses a NUL character in any value', () => {
    expect(() => readRepeatedParam({ resource: ['https://a', 'https://b\u0000'] }, 'resource')).toThrow(expect.objectContaining({
      error: 'invalid_request', description: 'the resource parameter must not contain a NUL character',
    }));
  });
  it('reads own properties only', () => {
    expect(readRepeatedParam(Object.create({ resource: 'x' }) as Record<string, string>, 'resource')).toEqual([]);
  });
});

describe('a form body (RFC 6749 §3.2)', () => {
  it('is the parsed object as it is', () => {
    const body = { grant_type: 'x' };
    expect(formBody(body)).toBe(body);
  });
  it('is invalid_request for anything but an object', () => {
    for (const bad of [undefined, null, 'grant_type=x', 42, ['a']]) {
      expect(() => formBody(bad), String(bad)).toThrow(expect.objectContaining({
        error: 'invalid_request', description: 'the request body must be application/x-www-form-urlencoded',
      }));
    }
  });
});
