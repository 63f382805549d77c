import { SignJWT, createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyRing } from '../../src/platform/keys/keyring.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, eventually, form, FORM_HEADERS, registryOf, TestClock } from '../support/clients.js';

describe('introspection (RFC 7662) and revocation (RFC 7009)', () => {
  let app: TestApp;
  const clock = new TestClock();
  let issuerAuth: string;
  let otherAuth: string;
  let rsAuth: string;
  let revokedKids = new Set<string>();

  beforeAll(async () => {
    app = await createTestApp({}, { clock });
    // Keys revoked the way the key manager revokes them: verificationKey(kid) answers undefined.
    const ring: KeyRing = app.context.keys;
    const verificationKey = ring.verificationKey.bind(ring);
    (ring as { verificationKey: KeyRing['verificationKey'] }).verificationKey = (kid) => (revokedKids.has(kid) ? undefined : verificationKey(kid));
    issuerAuth = basic('svc', (await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read write', resources: ['https://api.example.com'] }, 'svc')).clientSecret!);
    otherAuth = basic('other', (await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read' }, 'other')).clientSecret!);
    // A resource server, marked by the operator: it may see every token's details (RFC 7662 §4).
    rsAuth = basic('resource-server', (await createClient(app.context, { grant_types: ['client_credentials'], introspect_any_token: true }, 'resource-server')).clientSecret!);
    await createClient(app.context, { grant_types: ['authorization_code'], redirect_uris: ['https://spa.example.com/cb'], token_endpoint_auth_method: 'none' }, 'spa');
  });
  afterAll(async () => { await app.close(); });

  const post = (url: string, params: Record<string, string>, authorization?: string) => app.server.inject({
    method: 'POST', url, headers: { ...FORM_HEADERS, ...(authorization ? { authorization } : {}) }, payload: form(params),
  });
  const issue = async (authorization = issuerAuth, params: Record<string, string> = {}) =>
    (await post('/token', { grant_type: 'client_credentials', ...params }, authorization)).json().access_token as string;
  const introspect = (token: string, authorization = rsAuth, extra: Record<string, string> = {}) => post('/introspect', { token, ...extra }, authorization);

  describe('introspection', () => {
    it('answers active with the token claims', async () => {
      const token = await issue(issuerAuth, { scope: 'read' });
      const claims = decodeJwt(token);
      const res = await introspect(token);
      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.json()).toEqual({
        active: true, scope: 'read', client_id: 'svc', token_type: 'Bearer', exp: claims.exp, iat: claims.iat,
        sub: 'svc', aud: 'https://api.example.com', iss: 'http://localhost:8080', jti: claims.jti,
      });
    });

    it('treats token_type_hint as a hint only', async () => {
      const token = await issue();
      expect((await introspect(token, rsAuth, { token_type_hint: 'refresh_token' })).json().active).toBe(true);
      expect((await introspect(token, rsAuth, { token_type_hint: 'nonsense' })).json().active).toBe(true);
    });

    it('answers inactive for an expired token', async () => {
      const token = await issue();
      clock.advance(601);
      expect((await introspect(token)).json()).toEqual({ active: false });
    });

    it('answers inactive for malformed, unknown and foreign tokens', async () => {
      for (const token of ['not-a-jwt', 'a.b.c', 'x'.repeat(10_000)]) expect((await introspect(token)).json(), token.slice(0, 10)).toEqual({ active: false });
      // Signed by a key this server does not have.
      const { generateKeyPair } = await import('jose');
      const foreign = await generateKeyPair('ES256');
      const forged = await new SignJWT({ client_id: 'svc', scope: 'read' }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: app.context.keys.signingKey().kid })
        .setIssuer('http://localhost:8080').setSubject('svc').setAudience('x').setIssuedAt().setExpirationTime('5m').setJti('j').sign(foreign.privateKey);
      expect((await introspect(forged)).json()).toEqual({ active: false });
    });

    it('answers inactive for a JWT of this server that is not an access token (typ)', async () => {
      const key = app.context.keys.signingKey();
      const now = Math.floor(clock.now().getTime() / 1000);
      const idToken = await new SignJWT({ client_id: 'svc' }).setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid })
        .setIssuer('http://localhost:8080').setSubject('svc').setAudience('svc').setIssuedAt(now).setExpirationTime(now + 60).setJti('j2').sign(key.privateKey);
      expect((await introspect(idToken)).json()).toEqual({ active: false });
    });

    it('answers inactive for a token signed by a key that was revoked', async () => {
      const token = await issue();
      expect((await introspect(token)).json().active).toBe(true);
      revokedKids = new Set([app.context.keys.signingKey().kid]);
      try {
        expect((await introspect(token)).json()).toEqual({ active: false });
      } finally {
        revokedKids = new Set();
      }
    });

    it('answers inactive for a token whose client was disabled or deleted', async () => {
      const temp = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'temp')).clientSecret!;
      const token = await issue(basic('temp', temp));
      expect((await introspect(token)).json().active).toBe(true);
      await registryOf(app.context).setDisabled('temp', true, { source: 'cli' });
      await eventually(async () => (await introspect(token)).json().active === false);
      await registryOf(app.context).setDisabled('temp', false, { source: 'cli' });
      await eventually(async () => (await introspect(token)).json().active === true);
      await registryOf(app.context).delete('temp', { source: 'cli' });
      await eventually(async () => (await introspect(token)).json().active === false);
    });

    it('refuses unauthenticated callers, wrong credentials and public clients with 401 invalid_client', async () => {
      const token = await issue();
      const none = await post('/introspect', { token });
      expect(none.statusCode).toBe(401);
      expect(none.json().error).toBe('invalid_client');
      const wrong = await introspect(token, basic('resource-server', 'wrong'));
      expect(wrong.statusCode).toBe(401);
      expect(wrong.headers['www-authenticate']).toBe('Basic realm="latchkey"');
      const pub = await post('/introspect', { token, client_id: 'spa' });
      expect(pub.statusCode).toBe(401);
      expect(pub.json().error).toBe('invalid_client');
    });

    it('requires the token parameter', async () => {
      const res = await post('/introspect', {}, rsAuth);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    });

    it('counts introspections by result and format', async () => {
      const metrics = await app.context.metrics.registry.metrics();
      expect(metrics).toMatch(/latchkey_introspections_total\{result="active",format="json"\} [1-9]/);
      expect(metrics).toMatch(/latchkey_introspections_total\{result="inactive",format="json"\} [1-9]/);
    });
  });

  // RFC 7662 §4 leaves to the server which client may learn what about a token.
  describe('who may see a live token\'s details', () => {
    const refusals = () => app.logs.lines.filter((l) => l.event === 'introspection.refused');

    it('a client sees its own tokens', async () => {
      const token = await issue(otherAuth);
      expect((await introspect(token, otherAuth)).json()).toMatchObject({ active: true, client_id: 'other', sub: 'other' });
    });

    it('any other client that is not a marked resource server gets active:false, in JSON and in a JWT', async () => {
      const token = await issue(issuerAuth, { scope: 'read' });
      expect((await introspect(token, otherAuth)).json()).toEqual({ active: false });
      const jwt = await app.server.inject({
        method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: otherAuth, accept: 'application/token-introspection+jwt' }, payload: form({ token }),
      });
      expect(decodeJwt(jwt.body)).toMatchObject({ aud: 'other', token_introspection: { active: false } });
      // The token itself is fine: the resource server sees it.
      expect((await introspect(token)).json()).toMatchObject({ active: true, client_id: 'svc' });
      expect(await app.context.metrics.registry.metrics()).toMatch(/latchkey_introspections_total\{result="refused",format="json"\} [1-9]/);
    });

    it('records introspection.refused once per caller and window, naming the caller and the token (never the token itself)', async () => {
      const prying = basic('prying', (await createClient(app.context, { grant_types: ['client_credentials'] }, 'prying')).clientSecret!);
      const first = await issue(issuerAuth);
      const second = await issue(issuerAuth);
      expect((await introspect(first, prying)).json()).toEqual({ active: false });
      expect((await introspect(second, prying)).json()).toEqual({ active: false });
      // A token it cannot see but that is not live (garbled, unknown) is no refusal.
      expect((await introspect('not-a-token', prying)).json()).toEqual({ active: false });
      expect(refusals().filter((l) => l.client_id === 'prying')).toEqual([expect.objectContaining({
        event: 'introspection.refused', client_id: 'prying', token_client_id: 'svc', jti: decodeJwt(first).jti, ip: '127.0.0.1',
      })]);
      expect(app.logs.text()).not.toContain(first);
      // The next window records the next one.
      clock.advance(61);
      const third = await issue(issuerAuth);
      expect((await introspect(third, prying)).json()).toEqual({ active: false });
      expect(refusals().filter((l) => l.client_id === 'prying').map((l) => l.jti)).toEqual([decodeJwt(first).jti, decodeJwt(third).jti]);
      // Answers the caller may see raise no event.
      const before = refusals().length;
      await introspect(await issue(otherAuth), otherAuth);
      await introspect(third);
      expect(refusals()).toHaveLength(before);
    });
  });

  describe('JWT introspection responses (RFC 9701)', () => {
    const JWT_TYPE = 'application/token-introspection+jwt';
    const asJwt = (token: string, authorization = rsAuth, accept = JWT_TYPE) => app.server.inject({
      method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization, accept }, payload: form({ token }),
    });
    const verify = async (jwt: string) => {
      const jwks = createLocalJWKSet(JSON.parse((await app.server.inject('/jwks')).body) as Parameters<typeof createLocalJWKSet>[0]);
      return jwtVerify(jwt, jwks, { typ: 'token-introspection+jwt', issuer: 'http://localhost:8080', audience: 'resource-server', algorithms: ['ES256'] });
    };

    it('answers a signed JWT with the RFC 7662 answer as token_introspection, for the resource server asking', async () => {
      const token = await issue(issuerAuth, { scope: 'write' });
      const json = (await introspect(token)).json();
      const res = await asJwt(token);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe(JWT_TYPE);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers.vary).toBe('Accept');
      const { payload, protectedHeader } = await verify(res.body);
      expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'token-introspection+jwt', kid: app.context.keys.signingKey().kid });
      // iss, aud (the caller), iat and the answer: no sub, no exp, so it cannot pass for an access token.
      expect(payload).toEqual({
        iss: 'http://localhost:8080', aud: 'resource-server', iat: Math.floor(clock.now().getTime() / 1000), token_introspection: json,
      });
      expect(json).toMatchObject({ active: true, client_id: 'svc', scope: 'write' });
    });

    it('wraps an inactive answer the same way, with nothing but active:false', async () => {
      const token = await issue();
      await post('/revoke', { token }, issuerAuth);
      const res = await asJwt(token);
      expect(res.statusCode).toBe(200);
      const { payload } = await verify(res.body);
      expect(payload.token_introspection).toEqual({ active: false });
      const malformed = await verify((await asJwt('not-a-token', otherAuth)).body).catch((e: unknown) => e);
      expect(malformed).toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' }); // addressed to its caller, not to resource-server
      expect(decodeJwt((await asJwt('not-a-token', otherAuth)).body)).toMatchObject({ aud: 'other', token_introspection: { active: false } });
    });

    it('keeps JSON unless the Accept header prefers the JWT type', async () => {
      const token = await issue();
      const cases: Array<[string, 'jwt' | 'json']> = [
        ['application/json', 'json'],
        ['*/*', 'json'],
        ['application/json, application/token-introspection+jwt', 'json'],
        ['application/token-introspection+jwt, application/json', 'jwt'],
        ['application/json;q=0.5, application/token-introspection+jwt', 'jwt'],
        ['Application/Token-Introspection+JWT', 'jwt'],
        ['application/token-introspection+jwt;q=0', 'json'],
      ];
      for (const [accept, format] of cases) {
        const res = await asJwt(token, rsAuth, accept);
        expect(res.statusCode, accept).toBe(200);
        if (format === 'jwt') {
          expect(res.headers['content-type'], accept).toBe(JWT_TYPE);
          expect((await verify(res.body)).payload.token_introspection, accept).toMatchObject({ active: true });
        } else {
          expect(res.headers['content-type'], accept).toMatch(/^application\/json/);
          expect(res.json().active, accept).toBe(true);
        }
      }
      const plain = await introspect(token);
      expect(plain.headers['content-type']).toMatch(/^application\/json/);
    });

    it('answers errors as JSON, and refuses unauthenticated callers as before', async () => {
      const token = await issue();
      const none = await app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, accept: JWT_TYPE }, payload: form({ token }) });
      expect(none.statusCode).toBe(401);
      expect(none.json().error).toBe('invalid_client');
      const missing = await app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: rsAuth, accept: JWT_TYPE }, payload: form({}) });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().error).toBe('invalid_request');
    });

    it('signs with the registered introspection_signed_response_alg, and refuses rather than use another when it has no key', async () => {
      const rsa = basic('rs-rsa', (await createClient(app.context, { grant_types: ['client_credentials'], introspection_signed_response_alg: 'RS256', introspect_any_token: true }, 'rs-rsa')).clientSecret!);
      const token = await issue();
      const res = await asJwt(token, rsa);
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toEqual({ error: 'temporarily_unavailable', error_description: "no RS256 signing key is active for this client's introspection responses; retry later" });
      // Its JSON answer does not depend on the alg.
      expect((await introspect(token, rsa)).json().active).toBe(true);
      // A registered alg with a key: that key signs.
      const es = basic('rs-es', (await createClient(app.context, { grant_types: ['client_credentials'], introspection_signed_response_alg: 'ES256', introspect_any_token: true }, 'rs-es')).clientSecret!);
      expect(decodeProtectedHeader((await asJwt(token, es)).body)).toMatchObject({ alg: 'ES256', typ: 'token-introspection+jwt' });
    });

    it('counts JWT answers by format', async () => {
      const metrics = await app.context.metrics.registry.metrics();
      expect(metrics).toMatch(/latchkey_introspections_total\{result="active",format="jwt"\} [1-9]/);
      expect(metrics).toMatch(/latchkey_introspections_total\{result="inactive",format="jwt"\} [1-9]/);
    });
  });

  describe('revocation', () => {
    it('revokes its own access token: 200, then introspection answers inactive', async () => {
      const token = await issue();
      const res = await post('/revoke', { token, token_type_hint: 'access_token' }, issuerAuth);
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('');
      expect((await introspect(token)).json()).toEqual({ active: false });
      // Revoking again is harmless.
      expect((await post('/revoke', { token }, issuerAuth)).statusCode).toBe(200);
      const event = app.logs.lines.find((l) => l.event === 'token.revoked' && l.jti === decodeJwt(token).jti);
      expect(event).toMatchObject({ client_id: 'svc', kind: 'access_token' });
      expect(await app.context.metrics.registry.metrics()).toMatch(/latchkey_revocations_total\{kind="access_token"\} [1-9]/);
    });

    it('refuses to revoke another client\'s token, which stays active (RFC 7009 §2.1)', async () => {
      const token = await issue(issuerAuth);
      const res = await post('/revoke', { token }, otherAuth);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'the token was not issued to this client (RFC 7009 §2.1)' });
      expect((await introspect(token)).json().active).toBe(true);
    });

    it('answers 200 for unknown, invalid and expired tokens, and for a refresh_token hint', async () => {
      for (const token of ['unknown', 'a.b.c']) expect((await post('/revoke', { token }, issuerAuth)).statusCode).toBe(200);
      expect((await post('/revoke', { token: 'opaque', token_type_hint: 'refresh_token' }, issuerAuth)).statusCode).toBe(200);
      const token = await issue();
      clock.advance(601);
      expect((await post('/revoke', { token }, issuerAuth)).statusCode).toBe(200);
    });

    it('refuses unauthenticated callers with 401 invalid_client and requires token', async () => {
      const token = await issue();
      const res = await post('/revoke', { token });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('invalid_client');
      expect((await introspect(token)).json().active).toBe(true);
      expect((await post('/revoke', {}, issuerAuth)).json().error).toBe('invalid_request');
    });

    it('lets a public client identify itself with client_id (RFC 7009 §2.1)', async () => {
      expect((await post('/revoke', { token: 'whatever', client_id: 'spa' })).statusCode).toBe(200);
    });
  });
});
