import { describe, expect, it } from 'vitest';
import { claimValue, matchSubjectMapping } from '../../src/oauth/trusted-issuers/subject-mapping.js';
import type { SubjectMapping } from '../../src/oauth/trusted-issuers/issuer-config.js';

const rule = (match: Record<string, string>, client_id = 'target'): SubjectMapping => ({ match, client_id });

describe('subject mapping: claim values', () => {
  it('reads a top-level claim, and a nested one by JSON Pointer (RFC 6901)', () => {
    const claims = { sub: 'a', 'kubernetes.io': { namespace: 'payments', 'a/b': 'slash', 'c~d': 'tilde' } };
    expect(claimValue(claims, 'sub')).toBe('a');
    expect(claimValue(claims, '/kubernetes.io/namespace')).toBe('payments');
    expect(claimValue(claims, '/kubernetes.io/a~1b')).toBe('slash');
    expect(claimValue(claims, '/kubernetes.io/c~0d')).toBe('tilde');
    expect(claimValue(claims, '/kubernetes.io/missing')).toBeUndefined();
    expect(claimValue(claims, '/sub/deeper')).toBeUndefined();
    expect(claimValue(claims, 'toString')).toBeUndefined();
  });
});

describe('subject mapping: rules', () => {
  it('matches an exact value', () => {
    expect(matchSubjectMapping({ sub: 'system:serviceaccount:payments:api' }, [rule({ sub: 'system:serviceaccount:payments:api' })])?.client_id).toBe('target');
    expect(matchSubjectMapping({ sub: 'system:serviceaccount:payments:api2' }, [rule({ sub: 'system:serviceaccount:payments:api' })])).toBeUndefined();
  });

  it('lets * stand for one or more characters other than / and :', () => {
    const rules = [rule({ sub: 'repo:acme/*:ref:refs/heads/main' })];
    expect(matchSubjectMapping({ sub: 'repo:acme/web:ref:refs/heads/main' }, rules)).toBeDefined();
    expect(matchSubjectMapping({ sub: 'repo:acme/:ref:refs/heads/main' }, rules)).toBeUndefined();
    expect(matchSubjectMapping({ sub: 'repo:acme/web/x:ref:refs/heads/main' }, rules)).toBeUndefined();
    expect(matchSubjectMapping({ sub: 'repo:acme/web:x:ref:refs/heads/main' }, rules)).toBeUndefined();
    expect(matchSubjectMapping({ sub: 'repo:evil/web:ref:refs/heads/main' }, rules)).toBeUndefined();
  });

  it('matches nested claims and needs every entry of match', () => {
    const rules = [rule({ '/kubernetes.io/namespace': 'payments', sub: 'system:serviceaccount:*:api' })];
    expect(matchSubjectMapping({ sub: 'system:serviceaccount:payments:api', 'kubernetes.io': { namespace: 'payments' } }, rules)).toBeDefined();
    expect(matchSubjectMapping({ sub: 'system:serviceaccount:payments:api', 'kubernetes.io': { namespace: 'other' } }, rules)).toBeUndefined();
    expect(matchSubjectMapping({ sub: 'system:serviceaccount:payments:api' }, rules)).toBeUndefined();
  });

  it('never matches a value that is not a string', () => {
    const rules = [rule({ n: '1' }), rule({ b: 'true' }), rule({ o: '*' }), rule({ a: 'x' })];
    expect(matchSubjectMapping({ n: 1, b: true, o: { x: 'y' }, a: ['x'] }, rules)).toBeUndefined();
  });

  it('answers undefined when no rule matches, or there is none', () => {
    expect(matchSubjectMapping({ sub: 'a' }, [])).toBeUndefined();
    expect(matchSubjectMapping({ sub: 'a' }, [rule({ sub: 'b' })])).toBeUndefined();
  });

  it('takes the first matching rule, in order', () => {
    const rules: SubjectMapping[] = [rule({ sub: 'x:*' }, 'first'), { match: { sub: 'x:y' }, user: 'alice' }];
    expect(matchSubjectMapping({ sub: 'x:y' }, rules)?.client_id).toBe('first');
    expect(matchSubjectMapping({ sub: 'x:y' }, rules.slice().reverse())?.user).toBe('alice');
  });

  it('takes every other character literally (regular expression metacharacters included)', () => {
    expect(matchSubjectMapping({ iss: 'https://aXb' }, [rule({ iss: 'https://a.b' })])).toBeUndefined();
    expect(matchSubjectMapping({ iss: 'https://a.b' }, [rule({ iss: 'https://a.b' })])).toBeDefined();
    for (const literal of ['a+', '(a)', 'a|b', '[a]', 'a?', '^a$', 'a\\d', '{1}']) {
      expect(matchSubjectMapping({ v: literal }, [rule({ v: literal })]), literal).toBeDefined();
    }
    expect(matchSubjectMapping({ v: 'aa' }, [rule({ v: 'a+' })])).toBeUndefined();
    expect(matchSubjectMapping({ v: 'b' }, [rule({ v: 'a|b' })])).toBeUndefined();
  });
});
