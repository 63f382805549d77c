import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configDocumentation, loadConfig, parseDurationSeconds } from '../../src/server/config.js';

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
    expect(lines.find((l) => l.startsWith('TRUST_PROXY: '))).toBe('TRUST_PROXY: must be false, true, or comma-separated proxy addresses/CIDRs (got "maybe")');
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

  it('has documented signing key defaults: ES256, 30-day rotation, published 24 h ahead', () => {
    const c = loadConfig({});
    expect(c.signingAlgs).toEqual(['ES256']);
    expect([c.keyRotationInterval, c.keyPublishAhead, c.jwksMaxAge, c.keyRetireLeeway, c.keyCheckInterval]).toEqual([2592000, 86400, 3600, 300, 60]);
  });

  it('parses SIGNING_ALGS as a list of known algorithms, each once', () => {
    expect(loadConfig({ SIGNING_ALGS: 'EdDSA, RS256,PS256,ES256' }).signingAlgs).toEqual(['EdDSA', 'RS256', 'PS256', 'ES256']);
    expect(problems({ SIGNING_ALGS: 'ES256,HS256' })).toEqual(['SIGNING_ALGS: must be a comma-separated list of ES256, EdDSA, RS256, PS256 (got "ES256,HS256")']);
    expect(problems({ SIGNING_ALGS: 'ES256,ES256' })).toEqual(['SIGNING_ALGS: must not name an algorithm twice (got "ES256,ES256")']);
  });

  it('requires a new key to be published at least as long as a JWKS can be cached (plus one check interval)', () => {
    expect(problems({ JWKS_MAX_AGE: '1d' })).toEqual([
      'KEY_PUBLISH_AHEAD: must be at least JWKS_MAX_AGE + KEY_CHECK_INTERVAL (86460s), so every cached JWKS holds a key before it signs',
    ]);
    expect(problems({ JWKS_MAX_AGE: '23h', KEY_CHECK_INTERVAL: '1h', KEY_PUBLISH_AHEAD: '1d' })).toEqual([]);
    expect(problems({ KEY_PUBLISH_AHEAD: '10d', KEY_ROTATION_INTERVAL: '7d' })).toEqual([
      'KEY_ROTATION_INTERVAL: must not be shorter than KEY_PUBLISH_AHEAD (the next key could never be published long enough)',
    ]);
  });

  it('has documented rate limit and connection timeout defaults', () => {
    const c = loadConfig({});
    expect([c.tokenRateLimitPerClient, c.tokenRateLimitPerIp, c.introspectionRateLimitPerClient, c.introspectionRateLimitPerIp]).toEqual([6000, 60000, 60000, 60000]);
    expect([c.revocationRateLimitPerClient, c.revocationRateLimitPerIp, c.registrationRateLimitPerIp, c.registrationRateLimitPerClient]).toEqual([600, 6000, 60, 60]);
    expect([c.loginRateLimitPerIp, c.loginRateLimitPerLogin, c.clientAuthFailureLimit, c.rateLimitWindow]).toEqual([300, 30, 20, 60]);
    expect([c.requestTimeoutSeconds, c.headersTimeoutSeconds, c.connectionTimeoutSeconds, c.keepAliveTimeoutSeconds]).toEqual([30, 10, 120, 72]);
  });

  it('gives the headers 10 s or REQUEST_TIMEOUT if shorter, and refuses a HEADERS_TIMEOUT longer than REQUEST_TIMEOUT', () => {
    expect(loadConfig({ REQUEST_TIMEOUT: '5' }).headersTimeoutSeconds).toBe(5);
    expect(loadConfig({ HEADERS_TIMEOUT: '20s' }).headersTimeoutSeconds).toBe(20);
    expect(loadConfig({ REQUEST_TIMEOUT: '5', HEADERS_TIMEOUT: '5' }).headersTimeoutSeconds).toBe(5);
    expect(problems({ REQUEST_TIMEOUT: '5', HEADERS_TIMEOUT: '6' })).toEqual([
      'HEADERS_TIMEOUT: must not exceed REQUEST_TIMEOUT (5s), as the headers are part of the request (got 6s)',
    ]);
    expect(problems({ HEADERS_TIMEOUT: '0' })).toEqual(['HEADERS_TIMEOUT: must be between 1s and 600s (got 0s)']);
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

describe('AUDIT_DB_EXCLUDE', () => {
  it('defaults to machine-to-machine issuance, takes event and event:grant_type entries (URN grant types too), and none', () => {
    expect(loadConfig({}).auditDbExclude).toEqual(['token.issued:client_credentials']);
    expect(loadConfig({ AUDIT_DB_EXCLUDE: 'none' }).auditDbExclude).toEqual([]);
    expect(loadConfig({ AUDIT_DB_EXCLUDE: 'token.issued:urn:ietf:params:oauth:grant-type:device_code,login.failed' }).auditDbExclude)
      .toEqual(['token.issued:urn:ietf:params:oauth:grant-type:device_code', 'login.failed']);
    for (const bad of ['Token.Issued', 'token.issued:', 'a,,b', 'token issued']) expect(() => loadConfig({ AUDIT_DB_EXCLUDE: bad }), bad).toThrow(ConfigError);
  });
});

describe('TRUST_PROXY', () => {
  it('is false, true, or the proxies\' addresses and CIDR ranges', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.0.2.7,2001:db8::/32,loopback' }).trustProxy).toEqual(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', 'loopback']);
    for (const bad of ['2', '10.0.0.0/33', '2001:db8::/129', 'proxy.example.com', '10.0.0.1/8/1', '10.0.0.1,']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });
});

describe('OUTBOUND_ALLOWED_HOSTS', () => {
  it('defaults to nothing; takes host names, addresses and CIDR ranges, and refuses anything else naming it', () => {
    expect(loadConfig({}).outboundAllowedHosts).toEqual([]);
    expect(loadConfig({ OUTBOUND_ALLOWED_HOSTS: ' Keys.Corp.Example , 10.20.0.0/16,::1,127.0.0.1,' }).outboundAllowedHosts)
      .toEqual(['keys.corp.example', '10.20.0.0/16', '::1', '127.0.0.1']);
    expect(problems({ OUTBOUND_ALLOWED_HOSTS: '127.1,10.0.0.0/40,ok.example' })).toEqual([
      'OUTBOUND_ALLOWED_HOSTS: must be comma-separated host names, IP addresses (IPv4 as a.b.c.d) or CIDR ranges (not: 127.1, 10.0.0.0/40)',
    ]);
  });
});

describe('JWKS_URI_*', () => {
  it('caps a client key set at 128 KiB and 50 keys, and the cache at 1000 sets and 16 MiB, which must hold the largest set', () => {
    expect(loadConfig({})).toMatchObject({ jwksUriMaxBytes: 131072, jwksUriMaxKeys: 50, jwksUriCacheSize: 1000, jwksUriCacheBytes: 16777216 });
    expect(problems({ JWKS_URI_MAX_BYTES: '1048576', JWKS_URI_CACHE_BYTES: '524288' })).toEqual([
      'JWKS_URI_CACHE_BYTES: must be at least JWKS_URI_MAX_BYTES (1048576), or the largest accepted set would not fit',
    ]);
  });
});

describe('ADMIN_TOKENS', () => {
  const secret = 'a'.repeat(32);
  it('names each credential (name:secret), so the audit trail can say who acted', () => {
    expect(loadConfig({ ISSUER: 'http://localhost:8080', ADMIN_TOKENS: `ops-alice:${secret}, ci.deploy:${'b'.repeat(40)}` }).adminTokens)
      .toEqual([{ name: 'ops-alice', secret }, { name: 'ci.deploy', secret: 'b'.repeat(40) }]);
  });
  it('names a bare secret token-<first 8 hex of its SHA-256>', () => {
    expect(loadConfig({ ISSUER: 'http://localhost:8080', ADMIN_TOKENS: secret }).adminTokens)
      .toEqual([{ name: `token-${createHash('sha256').update(secret).digest('hex').slice(0, 8)}`, secret }]);
  });
  it('refuses a short secret and a name given twice', () => {
    expect(() => loadConfig({ ISSUER: 'http://localhost:8080', ADMIN_TOKENS: 'ops:short' })).toThrow('ADMIN_TOKENS: must be one or more comma-separated name:secret entries');
    expect(() => loadConfig({ ISSUER: 'http://localhost:8080', ADMIN_TOKENS: `ops:${secret},ops:${'c'.repeat(32)}` })).toThrow('ADMIN_TOKENS: names each credential once (ops is there twice)');
    // One secret under two names: the audit trail could name the wrong person.
    expect(() => loadConfig({ ISSUER: 'http://localhost:8080', ADMIN_TOKENS: `alice:${secret},bob:${secret}` })).toThrow('ADMIN_TOKENS: gives each credential its own secret (bob repeats another\'s)');
  });
});
