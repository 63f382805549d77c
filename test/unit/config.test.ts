import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configDocumentation, loadConfig, parseDurationSeconds } from '../../src/config.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  it('has documented defaults for the embedded store', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.issuer).toBe('http://localhost:8080');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.dataDir).toBe('./data');
    expect(c.accessTokenTtl).toBe(600);
    expect(c.authorizationCodeTtl).toBe(60);
    expect(c.bodyLimit).toBe(65536);
  });

  it('parses durations with units', () => {
    expect(parseDurationSeconds('600')).toBe(600);
    expect(parseDurationSeconds('90s')).toBe(90);
    expect(parseDurationSeconds('10m')).toBe(600);
    expect(parseDurationSeconds('12h')).toBe(43200);
    expect(parseDurationSeconds('30d')).toBe(2592000);
    expect(parseDurationSeconds('ten minutes')).toBeUndefined();
    expect(loadConfig({ ACCESS_TOKEN_TTL: '5m' }).accessTokenTtl).toBe(300);
  });

  it('reports every problem, one line each, naming the variable', () => {
    const lines = problems({ PORT: 'eighty', ACCESS_TOKEN_TTL: 'soon', LOG_LEVEL: 'loud', TRUST_PROXY: 'maybe' });
    expect(lines).toHaveLength(4);
    expect(lines.find((l) => l.startsWith('PORT: '))).toBe('PORT: must be an integer from 0 to 65535 (got "eighty")');
    expect(lines.find((l) => l.startsWith('ACCESS_TOKEN_TTL: '))).toBe('ACCESS_TOKEN_TTL: must be a duration such as 600, 90s, 10m, 12h or 30d (got "soon")');
    expect(lines.some((l) => l.startsWith('LOG_LEVEL: '))).toBe(true);
    expect(lines.find((l) => l.startsWith('TRUST_PROXY: '))).toBe('TRUST_PROXY: must be true or false (got "maybe")');
  });

  it('requires KEY_ENCRYPTION_SECRET with DATABASE_URL', () => {
    expect(problems({ DATABASE_URL: 'postgres://u:p@db/latchkey' })).toEqual([
      'KEY_ENCRYPTION_SECRET: is required when DATABASE_URL is set (every instance sharing the database must use the same secret)',
    ]);
    expect(problems({ DATABASE_URL: 'postgres://u:p@db/latchkey', KEY_ENCRYPTION_SECRET: 'x'.repeat(32) })).toEqual([]);
  });

  it('rejects a short KEY_ENCRYPTION_SECRET', () => {
    expect(problems({ KEY_ENCRYPTION_SECRET: 'short' })).toEqual([
      'KEY_ENCRYPTION_SECRET: must be at least 32 characters (e.g. `openssl rand -base64 32`)',
    ]);
  });

  it('keeps one spelling of the issuer: no trailing slash', () => {
    expect(loadConfig({ ISSUER: 'https://id.example.com/' }).issuer).toBe('https://id.example.com');
    expect(loadConfig({ ISSUER: 'https://id.example.com/tenant/' }).issuer).toBe('https://id.example.com/tenant');
  });

  it('rejects an issuer that is not https (outside loopback), or has a query or fragment (RFC 8414 §2)', () => {
    expect(problems({ ISSUER: 'http://id.example.com' })).toEqual(['ISSUER: must use https (http is allowed only for localhost, 127.0.0.1 or [::1])']);
    expect(problems({ ISSUER: 'https://id.example.com/?tenant=a' })).toEqual(['ISSUER: must not have a query or a fragment (RFC 8414 §2)']);
    expect(problems({ ISSUER: 'https://id.example.com/#x' })).toEqual(['ISSUER: must not have a query or a fragment (RFC 8414 §2)']);
    expect(problems({ ISSUER: 'not a url' })).toEqual(['ISSUER: must be an absolute URL such as https://id.example.com (got "not a url")']);
    expect(loadConfig({ ISSUER: 'http://127.0.0.1:9000' }).issuer).toBe('http://127.0.0.1:9000');
  });

  it('rejects an idle refresh lifetime longer than the absolute one', () => {
    expect(problems({ REFRESH_TOKEN_IDLE_TTL: '100d', REFRESH_TOKEN_ABSOLUTE_TTL: '30d' })).toEqual([
      'REFRESH_TOKEN_IDLE_TTL: must not exceed REFRESH_TOKEN_ABSOLUTE_TTL',
    ]);
  });

  it('reads scope descriptions as a JSON object of strings', () => {
    expect(loadConfig({ SCOPE_DESCRIPTIONS: '{"api:read":"Read your invoices"}' }).scopeDescriptions).toEqual({ 'api:read': 'Read your invoices' });
    expect(problems({ SCOPE_DESCRIPTIONS: '["a"]' })).toEqual(['SCOPE_DESCRIPTIONS: must be a JSON object mapping scope names to descriptions of at most 200 characters']);
    expect(problems({ SCOPE_DESCRIPTIONS: '{not json' })).toEqual(['SCOPE_DESCRIPTIONS: must be a JSON object mapping scope names to descriptions of at most 200 characters']);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(8080);
  });

  it('is documented: the README table names every variable with its default', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const row of configDocumentation()) {
      const line = readme.split('\n').find((l) => l.startsWith(`| \`${row.name}\``));
      expect(line, `README row for ${row.name}`).toBeDefined();
      if (row.default) expect(line).toContain(`\`${row.default}\``);
    }
  });
});
