import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExternalTokenRejected, type ExternalTokenUse } from '../../src/oauth/trusted-issuers/external-token.js';
import { TemporarilyUnavailable } from '../../src/oauth/errors.js';
import { createClient } from '../support/clients.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { TestClock } from '../support/clients.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';
import { openTestStore } from '../support/store.js';
import { kubernetesClaims, startExternalIssuer, type ExternalIssuer } from '../support/external-issuer.js';

const ADMIN = 'admin-credential-0123456789-0123456789-abcdef';

/** The reason a token is refused for (throws if it is accepted). */
async function rejection(app: TestApp, token: string, use: ExternalTokenUse = 'subject_token'): Promise<string> {
  try {
    await app.services.externalTokens.verify(token, use);
  } catch (err) {
    if (err instanceof ExternalTokenRejected) return err.reason;
    throw err;
  }
  throw new Error('accepted');
}

describe('trusted external issuers: verifying their tokens (RFC 7519, RFC 8725)', () => {
  let app: TestApp;
  let k8s: ExternalIssuer;
  let es: ExternalIssuer;
  let stranger: ExternalIssuer;
  let aud: string;
  const clock = new TestClock(new Date());
  const pod = (options: Parameters<ExternalIssuer['sign']>[1] = {}, claims: Record<string, unknown> = {}) =>
    k8s.sign({ ...kubernetesClaims('payments', 'api', aud), ...claims }, options);
  const verify = (token: string, use: ExternalTokenUse = 'subject_token') => app.services.externalTokens.verify(token, use);
  const actor = { by: 'cli' };

  beforeAll(async () => {
    k8s = await startExternalIssuer({ clock });
    es = await startExternalIssuer({ alg: 'ES256', clock });
    stranger = await startExternalIssuer({ clock });
    app = await createTestApp({ ...FAST_ARGON2, OUTBOUND_ALLOWED_HOSTS: '127.0.0.1,localhost' }, { clock });
    aud = app.context.config.issuer;
    await app.services.trustedIssuers.create({
      name: 'k8s', issuer: k8s.issuer, jwks_uri: k8s.jwksUri, audiences: [aud], max_token_age: 900,
      subject_mappings: [
        { match: { '/kubernetes.io/namespace': 'payments', sub: 'system:serviceaccount:payments:*' }, client_id: 'payments-api' },
        { match: { sub: 'person:alice' }, user: 'alice' },
        { match: { sub: 'person:*' }, user: 'carol' },
      ],
    }, actor);
    // Algorithms RS256 only: the ES256 issuer's tokens are refused for their alg.
    await app.services.trustedIssuers.create({ name: 'es-static', issuer: es.issuer, jwks: es.jwks(), audiences: [aud], algorithms: ['RS256'] }, actor);
    await createUser(app.context, 'alice');
    const carol = await createUser(app.context, 'carol');
    await app.services.users.setDisabled(carol.id, true, clock.now());
  });
  afterAll(async () => {
    await app.close();
    await Promise.all([k8s.close(), es.close(), stranger.close()]);
  });

  it('verifies a token and maps its subject to a client', async () => {
    const verified = await verify(await pod());
    expect(verified).toMatchObject({ issuer: k8s.issuer, issuerName: 'k8s', subject: 'system:serviceaccount:payments:api', principal: { kind: 'client', clientId: 'payments-api' } });
    expect(app.services.externalTokens.trusts(k8s.issuer)).toBe(true);
    expect(app.services.externalTokens.trusts(stranger.issuer)).toBe(false);
  });

  it('maps to an enabled user by login, and to no principal for a disabled one or no rule', async () => {
    const alice = await app.services.users.findByLogin('alice');
    expect((await verify(await pod({}, { sub: 'person:alice' }))).principal).toEqual({ kind: 'user', userId: alice!.id });
    expect((await verify(await pod({}, { sub: 'person:carol' }))).principal).toBeUndefined();
    expect((await verify(await pod({}, { sub: 'system:serviceaccount:other:api', 'kubernetes.io': { namespace: 'other' } }))).principal).toBeUndefined();
  });

  it('refuses an unknown issuer, a disabled one, a bad signature', async () => {
    expect(await rejection(app, await stranger.sign(kubernetesClaims('payments', 'api', aud)))).toBe('issuer not trusted');
    const [h, p] = (await pod()).split('.');
    const otherSignature = (await pod()).split('.')[2];
    expect(await rejection(app, `${h}.${p}.${otherSignature}`)).toBe('bad signature');
    expect(await rejection(app, 'x'.repeat(9000))).toBe('token too long');
    expect(await rejection(app, 'not-a-jwt')).toBe('not a JWT');
    await app.services.trustedIssuers.setDisabled('k8s', true, actor);
    expect(app.services.externalTokens.trusts(k8s.issuer)).toBe(false);
    expect(await rejection(app, await pod())).toBe('issuer disabled');
    await app.services.trustedIssuers.setDisabled('k8s', false, actor);
    expect(await verify(await pod())).toBeDefined();
  });

  it('refuses a JWT typed for another purpose, and a badly typed aud or sub, as rejections (RFC 8725 §3.11; never a 5xx)', async () => {
    for (const typ of ['logout+jwt', 'application/token-introspection+jwt', 'dpop+jwt']) {
      expect(await rejection(app, await pod({ typ }))).toBe(`typ ${typ} is not an identity token`);
    }
    expect((await verify(await pod({ typ: 'JWT' }))).subject).toBe('system:serviceaccount:payments:api');
    for (const bad of [5, {}, [aud, 7]]) expect(await rejection(app, await pod({}, { aud: bad }))).toBe('aud must be a string or an array of strings');
    expect(await rejection(app, await pod({}, { sub: 7 }))).toMatch(/sub/);
  });

  it('refuses an algorithm the issuer is not declared with, HS256 and none included (RFC 8725 §3.1)', async () => {
    expect(await rejection(app, await es.sign(kubernetesClaims('payments', 'api', aud)))).toBe('algorithm not allowed');
    const now = Math.floor(clock.now().getTime() / 1000);
    const claims = { ...kubernetesClaims('payments', 'api', aud), iss: k8s.issuer, iat: now, exp: now + 600, jti: 'x' };
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode('k'.repeat(32)));
    expect(await rejection(app, hs)).toBe('algorithm not allowed');
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    expect(await rejection(app, `${b64({ alg: 'none' })}.${b64(claims)}.`)).toMatch(/algorithm not allowed|malformed token/);
  });

  it('refuses a wrong aud, an expired token, one too old, one not yet valid', async () => {
    expect(await rejection(app, await k8s.sign(kubernetesClaims('payments', 'api', 'https://other.example')))).toBe('aud names none of the issuer\'s audiences');
    expect(await rejection(app, await pod({ iatOffset: -700, ttl: 600 }))).toBe('token expired');
    expect(await rejection(app, await pod({ iatOffset: -1000, ttl: 3600 }))).toBe('token too old (max_token_age)');
    // Without iat, what it has left to live is bounded by max_token_age instead.
    expect(await rejection(app, await pod({ noIat: true, ttl: 3600 }))).toBe('token too old (max_token_age)');
    expect(await verify(await pod({ noIat: true, ttl: 600 }))).toBeDefined();
    const now = Math.floor(clock.now().getTime() / 1000);
    expect(await rejection(app, await pod({}, { nbf: now + 600 }))).toBe('claim nbf invalid');
    expect(await rejection(app, await pod({ iatOffset: 600 }))).toBe('iat in the future');
  });

  it('spends a client or grant assertion\'s jti once; a subject token may be presented again', async () => {
    const token = await pod();
    await verify(token, 'client_assertion');
    expect(await rejection(app, token, 'client_assertion')).toBe('jti already used');
    const grant = await pod();
    await verify(grant, 'authorization_grant');
    expect(await rejection(app, grant, 'authorization_grant')).toBe('jti already used');
    const subject = await pod();
    await verify(subject);
    await verify(subject);
  });

  it('accepts an assertion without jti only when freshly issued (NO_JTI_MAX_AGE_SECONDS)', async () => {
    expect(await verify(await pod({ jti: null, iatOffset: -10 }), 'client_assertion')).toBeDefined();
    expect(await rejection(app, await pod({ jti: null, iatOffset: -400 }), 'client_assertion')).toBe('no jti, and not issued within 300s');
    expect(await rejection(app, await pod({ jti: null, noIat: true }), 'client_assertion')).toBe('no jti, and not issued within 300s');
    expect(await verify(await pod({ jti: null, iatOffset: -400 }), 'subject_token')).toBeDefined();
  });

  it('refetches the issuer\'s keys for an unknown kid, at most once per cooldown (shared JWK set cache)', async () => {
    await verify(await pod());
    const fetches = () => k8s.requests.filter((r) => r === '/jwks').length;
    const before = fetches();
    await k8s.rotate();
    clock.advance(31);
    expect(await verify(await pod())).toBeDefined();
    expect(fetches()).toBe(before + 1);
    await k8s.rotate();
    // Within the cooldown the set is not fetched again: the new key is not known yet.
    expect(await rejection(app, await pod())).toBe('no key of the issuer matches');
    expect(fetches()).toBe(before + 1);
    clock.advance(31);
    expect(await verify(await pod())).toBeDefined();
    expect(fetches()).toBe(before + 2);
  });

  it('counts verifications by issuer name, use and outcome', async () => {
    const text = await app.context.metrics.registry.metrics();
    expect(text).toMatch(/latchkey_external_tokens_total\{issuer="k8s",use="subject_token",outcome="accepted"\} \d+/);
    expect(text).toMatch(/latchkey_external_tokens_total\{issuer="unknown",use="subject_token",outcome="rejected"\} \d+/);
    expect(text).toMatch(/latchkey_external_tokens_total\{issuer="k8s",use="client_assertion",outcome="rejected"\} \d+/);
  });
});

describe('trusted external issuers: discovery (OpenID Connect Discovery §4)', () => {
  let app: TestApp;
  let oidc: ExternalIssuer;
  let liar: Server;
  let liarIssuer: string;

  beforeAll(async () => {
    oidc = await startExternalIssuer();
    // Serves a discovery document naming another issuer than the one it is asked for.
    liar = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: oidc.issuer, jwks_uri: oidc.jwksUri }));
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    liarIssuer = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
    app = await createTestApp({ OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' });
    const aud = app.context.config.issuer;
    await app.services.trustedIssuers.create({ name: 'oidc', issuer: oidc.issuer, discovery: true, audiences: [aud] }, { by: 'cli' });
    await app.services.trustedIssuers.create({ name: 'liar', issuer: liarIssuer, discovery: true, audiences: [aud] }, { by: 'cli' });
  });
  afterAll(async () => {
    await app.close();
    await oidc.close();
    await new Promise<void>((resolve) => liar.close(() => resolve()));
  });

  it('finds the keys through the discovery document, fetched once', async () => {
    const aud = app.context.config.issuer;
    await app.services.externalTokens.verify(await oidc.sign({ sub: 'a', aud }), 'subject_token');
    await app.services.externalTokens.verify(await oidc.sign({ sub: 'b', aud }), 'subject_token');
    expect(oidc.requests.filter((r) => r === '/.well-known/openid-configuration')).toHaveLength(1);
  });

  it('refuses an issuer whose discovery document names another issuer', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ sub: 'a', aud: app.context.config.issuer, jti: 'j' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(liarIssuer).setIssuedAt(now).setExpirationTime(now + 60).sign(privateKey);
    // Keys that cannot be had are the server's trouble, not the token's: 503 with Retry-After.
    const err = await app.services.externalTokens.verify(token, 'subject_token').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemporarilyUnavailable);
    expect(err).toMatchObject({ error: 'temporarily_unavailable', status: 503, debug: 'discovery failed: its issuer is not the configured issuer', headers: { 'retry-after': '30' } });
  });

  it('answers a workload whose issuer\'s keys cannot be fetched 503 temporarily_unavailable, not invalid_client (no failed authentication is counted)', async () => {
    // A jwks_uri where nothing listens.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const downIssuer = `http://127.0.0.1:${port}/down`;
    await app.services.trustedIssuers.create({ name: 'down', issuer: downIssuer, jwks_uri: `http://127.0.0.1:${port}/jwks`, audiences: [app.context.config.issuer] }, { by: 'cli' });
    await createClient(app.context, { grant_types: ['client_credentials'], token_endpoint_auth_method: 'workload_identity', workload_identity: { issuer: downIssuer, subject: 'w' } }, 'down-workload');
    const { privateKey } = await generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ sub: 'w', aud: app.context.config.issuer, jti: 'j-down' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(downIssuer).setIssuedAt(now).setExpirationTime(now + 60).sign(privateKey);
    const res = await app.server.inject({ method: 'POST', url: '/token', payload: new URLSearchParams({
      grant_type: 'client_credentials', client_id: 'down-workload', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: token,
    }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'the keys of issuer down cannot be fetched; retry later' });
    expect(res.headers['retry-after']).toBe('30');
    expect(await app.context.metrics.registry.getSingleMetricAsString('latchkey_client_auth_failures_total')).not.toContain('workload_identity');
  });
});

describe('trusted external issuers: the admin API and TRUSTED_ISSUERS_FILE', () => {
  let app: TestApp;
  const issuerUrl = 'https://k8s.example.com';
  const jwks = async () => ({ keys: [await exportJWK((await generateKeyPair('ES256')).publicKey)] });
  const admin = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, credential = ADMIN) => app.server.inject({
    method, url, headers: { authorization: `Bearer ${credential}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });

  beforeAll(async () => {
    app = await createTestApp({ ADMIN_TOKENS: ADMIN });
  });
  afterAll(async () => { await app.close(); });

  it('needs the admin credential', async () => {
    expect((await admin('GET', '/admin/trusted-issuers', undefined, 'wrong')).statusCode).toBe(401);
  });

  it('creates, lists, shows, replaces, disables, enables and deletes, auditing each change', async () => {
    const created = await admin('POST', '/admin/trusted-issuers', { name: 'k8s-prod', issuer: issuerUrl, jwks: await jwks(), audiences: ['https://api.example.com'] });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ name: 'k8s-prod', issuer: issuerUrl, algorithms: ['RS256', 'ES256'], max_token_age: 3600, allow_reuse: false, disabled: false });
    expect((await admin('GET', '/admin/trusted-issuers')).json().map((i: { name: string }) => i.name)).toEqual(['k8s-prod']);
    const shown = (await admin('GET', '/admin/trusted-issuers/k8s-prod')).json();
    const replaced = await admin('PUT', '/admin/trusted-issuers/k8s-prod', { ...shown, max_token_age: 600 });
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.json().max_token_age).toBe(600);
    expect((await admin('POST', '/admin/trusted-issuers/k8s-prod/disable')).json().disabled).toBe(true);
    expect((await admin('POST', '/admin/trusted-issuers/k8s-prod/enable')).json().disabled).toBe(false);
    expect((await admin('DELETE', '/admin/trusted-issuers/k8s-prod')).statusCode).toBe(204);
    expect((await admin('GET', '/admin/trusted-issuers/k8s-prod')).statusCode).toBe(404);
    const events = app.logs.lines.filter((l) => String(l.event).startsWith('trusted_issuer.'));
    expect(events.map((e) => e.event)).toEqual(['trusted_issuer.created', 'trusted_issuer.updated', 'trusted_issuer.disabled', 'trusted_issuer.enabled', 'trusted_issuer.deleted']);
    expect(events[0]).toMatchObject({ name: 'k8s-prod', issuer: issuerUrl, by: 'admin_api' });
    expect(events[0]!.admin).toMatch(/^token-[0-9a-f]{8}$/);
    expect(JSON.stringify(events)).not.toContain(ADMIN);
  });

  it('answers invalid_request for a bad declaration and not_found for an unknown name', async () => {
    const cases: unknown[] = [
      'not an object',
      { name: 'x', issuer: issuerUrl, audiences: ['a'] },
      { name: 'Bad Name', issuer: issuerUrl, jwks: await jwks(), audiences: ['a'] },
      { name: 'x', issuer: issuerUrl, jwks: await jwks(), audiences: ['a'], algorithms: ['HS256'] },
      { name: 'x', issuer: issuerUrl, jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] }, audiences: ['a'] },
      { name: 'x', issuer: 'http://k8s.example.com', jwks: await jwks(), audiences: ['a'] },
      { name: 'x', issuer: issuerUrl, jwks_uri: 'https://10.0.0.1/jwks', audiences: ['a'] },
      // This server's own issuer: its ID tokens would pass for external ones (RFC 8725 §3.12).
      { name: 'x', issuer: app.context.config.issuer, jwks: await jwks(), audiences: ['a'] },
    ];
    for (const body of cases) {
      const res = await admin('POST', '/admin/trusted-issuers', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
    // A match key naming the prototype would vanish from the rule, widening it: refused.
    const protoBody = `{"name":"p","issuer":"https://p.example.com","jwks":${JSON.stringify(await jwks())},"audiences":["a"],"subject_mappings":[{"match":{"__proto__":"x","sub":"*"},"client_id":"c"}]}`;
    const proto = await app.server.inject({ method: 'POST', url: '/admin/trusted-issuers', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, payload: protoBody });
    expect(proto.statusCode).toBe(400); // Fastify's JSON parser refuses it first (onProtoPoisoning)
    expect(proto.json().error).toBe('invalid_request');
    // The CLI and TRUSTED_ISSUERS_FILE parse with JSON.parse / YAML, which keep the key: the schema refuses it.
    expect(() => app.services.trustedIssuers.validate(JSON.parse(protoBody)))
      .toThrow('a claim must not be named __proto__, constructor or prototype');
    await admin('POST', '/admin/trusted-issuers', { name: 'one', issuer: issuerUrl, jwks: await jwks(), audiences: ['a'] });
    const twice = await admin('POST', '/admin/trusted-issuers', { name: 'two', issuer: issuerUrl, jwks: await jwks(), audiences: ['a'] });
    expect(twice.json().error).toBe('invalid_request');
    expect((await admin('PUT', '/admin/trusted-issuers/one', { name: 'renamed', issuer: issuerUrl, jwks: await jwks(), audiences: ['a'] })).statusCode).toBe(400);
    for (const [method, url] of [['GET', '/admin/trusted-issuers/nope'], ['DELETE', '/admin/trusted-issuers/nope'], ['POST', '/admin/trusted-issuers/nope/disable']] as const) {
      const res = await admin(method, url);
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error).toBe('not_found');
    }
    expect((await admin('PUT', '/admin/trusted-issuers/nope', { issuer: 'https://nope.example.com', jwks: await jwks(), audiences: ['a'] })).statusCode).toBe(404);
  });

  it('upserts TRUSTED_ISSUERS_FILE at start-up, idempotently, and refuses the whole file for one bad entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-issuers-'));
    const file = join(dir, 'issuers.yaml');
    const key = JSON.stringify(await jwks());
    writeFileSync(file, `issuers:\n  - name: ci\n    issuer: https://token.actions.example.com\n    jwks: ${key}\n    audiences: [https://latchkey.example.com]\n`);
    const store = await openTestStore();
    try {
      const first = await createTestApp({ TRUSTED_ISSUERS_FILE: file }, { store });
      expect((await first.services.trustedIssuers.list()).map((s) => s.config.name)).toEqual(['ci']);
      expect(first.services.externalTokens.trusts('https://token.actions.example.com')).toBe(true);
      await first.close();
      const again = await createTestApp({ TRUSTED_ISSUERS_FILE: file }, { store });
      expect(again.logs.lines.filter((l) => String(l.event).startsWith('trusted_issuer.'))).toEqual([]);
      await again.close();
      writeFileSync(file, `issuers:\n  - name: ci\n    issuer: https://token.actions.example.com\n    jwks: ${key}\n    audiences: [https://latchkey.example.com]\n    max_token_age: 600\n  - name: bad\n    issuer: https://bad.example.com\n    audiences: [a]\n`);
      await expect(createTestApp({ TRUSTED_ISSUERS_FILE: file }, { store })).rejects.toThrow(/TRUSTED_ISSUERS_FILE .*issuers\[1\]/);
      const after = await createTestApp({}, { store });
      expect((await after.services.trustedIssuers.get('ci')).config.max_token_age).toBe(3600);
      await after.close();
    } finally {
      await store.close();
    }
  });
});
