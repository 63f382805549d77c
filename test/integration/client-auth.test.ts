import { createServer, type Server } from 'node:http';
import { createHmac, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRepository } from '../../src/oauth/clients/store.js';
import { OutboundPolicy } from '../../src/platform/outbound/policy.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, eventually, form, FORM_HEADERS, parseClientMetadata, registryOf, TestClock } from '../support/clients.js';

const ISSUER = 'http://localhost:8080';
const TOKEN_ENDPOINT = `${ISSUER}/token`;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('client authentication at the token endpoint', () => {
  let app: TestApp;
  const clock = new TestClock();
  let secret: string;
  let postSecret: string;
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  let remoteKey: CryptoKey;
  let jwksServer: Server;
  let jwksUri: string;
  /** The paths the JWKS server was asked for. */
  const jwksRequests: string[] = [];
  let remoteJwk: JWK;
  let jwksPort = 0;

  beforeAll(async () => {
    // Many refusals come from one address here; the back-off after CLIENT_AUTH_FAILURE_LIMIT has its own tests.
    // The jwks_uri server listens on 127.0.0.1, an address the outbound guard refuses unless allowed.
    app = await createTestApp({ CLIENT_AUTH_FAILURE_LIMIT: '1000', OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' }, { clock });
    secret = (await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read' }, 'basic-client')).clientSecret!;
    postSecret = (await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read', token_endpoint_auth_method: 'client_secret_post' }, 'post-client')).clientSecret!;

    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] } }, 'jwt-client');

    const remote = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    remoteKey = remote.privateKey;
    remoteJwk = { ...(await exportJWK(remote.publicKey)), kid: 'r1', alg: 'EdDSA' };
    // Every address: 127.0.0.1 (allowed) and ::1 (not) both reach it.
    jwksServer = createServer((req, res) => {
      jwksRequests.push(req.url!);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/big.json') {
        // A JWKS of 1 MB: the key, and a megabyte of padding in an extra member.
        res.end(JSON.stringify({ keys: [{ ...remoteJwk, x5c_padding: 'A'.repeat(1024 * 1024) }] }));
      } else if (req.url === '/many.json') {
        res.end(JSON.stringify({ keys: Array.from({ length: 60 }, (_, i) => ({ ...remoteJwk, kid: i === 0 ? 'r1' : `r1-${i}` })) }));
      } else {
        res.end(JSON.stringify({ keys: [remoteJwk] }));
      }
    });
    await new Promise<void>((r) => jwksServer.listen(0, '::', r));
    jwksPort = (jwksServer.address() as AddressInfo).port;
    jwksUri = `http://127.0.0.1:${jwksPort}/jwks.json`;
    await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUri }, 'remote-jwt-client');

    await createClient(app.context, { grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' }, 'public-client');
  });
  afterAll(async () => {
    await app.close();
    await new Promise((r) => jwksServer.close(r));
  });

  const token = (params: Record<string, string>, authorization?: string) => app.server.inject({
    method: 'POST', url: '/token', headers: { ...FORM_HEADERS, ...(authorization ? { authorization } : {}) },
    payload: form({ grant_type: 'client_credentials', ...params }),
  });
  /** 401 invalid_client: bare, or with `told` after the colon (issue #21: errors that say why). */
  const expectInvalidClient = (res: Awaited<ReturnType<typeof token>>, basicChallenge: boolean, told?: string) => {
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({ error: 'invalid_client', error_description: told === undefined ? 'client authentication failed' : `client authentication failed: ${told}` });
    expect(res.headers['www-authenticate']).toBe(basicChallenge ? 'Basic realm="latchkey"' : undefined);
  };
  const TOLD = {
    basic: 'this client is registered for client_secret_basic: send client_id and client_secret in the Authorization header (HTTP Basic), not in the form body',
    post: 'this client is registered for client_secret_post: send client_id and client_secret in the form body, not in the Authorization header',
    replayed: 'client_assertion was already used (its jti has been seen before): make a new assertion, with a new jti, for each request',
    kid: "the kid in the client_assertion header names no key registered for this client, though one of its keys signed it (send that key's kid)",
  };

  const now = () => Math.floor(clock.now().getTime() / 1000);
  const assertion = (claims: Record<string, unknown> = {}, key: CryptoKey = privateKey, alg = 'ES256', kid = 'k1') =>
    new SignJWT({ jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg, kid })
      .setIssuer((claims.iss as string) ?? 'jwt-client')
      .setSubject((claims.sub as string) ?? 'jwt-client')
      .setAudience((claims.aud as string | string[]) ?? TOKEN_ENDPOINT)
      .setIssuedAt(now())
      .setExpirationTime((claims.exp as number) ?? now() + 60)
      .sign(key);
  /** The logged reason of the latest client.auth_failed event (debug detail, never sent). */
  const lastFailure = () => String(app.logs.lines.filter((l) => l.event === 'client.auth_failed').at(-1)?.reason);
  const withAssertion = (jwt: string, extra: Record<string, string> = {}) => token({ client_assertion_type: ASSERTION_TYPE, client_assertion: jwt, ...extra });
  /** The same from an address of its own, so that its failures leave the other tests' CLIENT_AUTH_FAILURE_LIMIT alone. */
  const withAssertionFrom = (remoteAddress: string, jwt: string) => app.server.inject({
    method: 'POST', url: '/token', remoteAddress, headers: FORM_HEADERS,
    payload: form({ grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt }),
  });

  describe('client_secret_basic (RFC 6749 §2.3.1)', () => {
    it('authenticates with the id and secret in the Basic header', async () => {
      expect((await token({}, basic('basic-client', secret))).statusCode).toBe(200);
    });

    it('form-url-decodes the id and the secret inside the header', async () => {
      const header = `Basic ${Buffer.from(`basic%2Dclient:${encodeURIComponent(secret)}`).toString('base64')}`;
      expect((await token({}, header)).statusCode).toBe(200);
    });

    it('refuses a malformed Basic header with 401 invalid_client and a Basic challenge', async () => {
      for (const header of ['Basic', 'Basic !!!notbase64', `Basic ${b64url('no-colon')}`, `Basic ${Buffer.from('basic-client:%zz').toString('base64')}`, `Basic ${Buffer.from(':x').toString('base64')}`]) {
        expectInvalidClient(await token({}, header), true);
      }
    });

    it('refuses a wrong secret, and an unknown client, with 401 invalid_client and a Basic challenge', async () => {
      expectInvalidClient(await token({}, basic('basic-client', `${secret}x`)), true);
      expectInvalidClient(await token({}, basic('nobody', secret)), true);
    });

    it('refuses a client_id in the body that differs from the header with invalid_request', async () => {
      const res = await token({ client_id: 'post-client' }, basic('basic-client', secret));
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    });

    it('refuses a client registered for client_secret_post that uses Basic: with its right secret, saying so', async () => {
      expectInvalidClient(await token({}, basic('post-client', postSecret)), true, TOLD.post);
      expect(lastFailure()).toBe('client is registered for client_secret_post, not client_secret_basic');
      expectInvalidClient(await token({}, basic('post-client', `${postSecret}x`)), true);
    });
  });

  describe('client_secret_post', () => {
    it('authenticates with client_id and client_secret in the body', async () => {
      expect((await token({ client_id: 'post-client', client_secret: postSecret })).statusCode).toBe(200);
    });

    it('refuses a wrong secret with 401 invalid_client and no Basic challenge', async () => {
      expectInvalidClient(await token({ client_id: 'post-client', client_secret: 'wrong' }), false);
    });

    // openid-client's discovery(issuer, id, secret) posts the secret; RFC 7591 registers client_secret_basic.
    it('refuses a basic client using the body: with its right secret, saying so, with a Basic challenge', async () => {
      expectInvalidClient(await token({ client_id: 'basic-client', client_secret: secret }), true, TOLD.basic);
      expect(lastFailure()).toBe('client is registered for client_secret_basic, not client_secret_post');
    });

    it('says so at /introspect and /revoke too', async () => {
      for (const url of ['/introspect', '/revoke']) {
        const res = await app.server.inject({ method: 'POST', url, headers: FORM_HEADERS, payload: form({ token: 'x', client_id: 'basic-client', client_secret: secret }) });
        expectInvalidClient(res, true, TOLD.basic);
      }
    });

    it('stays bare for a wrong secret by the other method, an unknown client, and a secret for a key client', async () => {
      expectInvalidClient(await token({ client_id: 'basic-client', client_secret: `${secret}x` }), false);
      expectInvalidClient(await token({ client_id: 'nobody', client_secret: secret }), false);
      expectInvalidClient(await token({ client_id: 'jwt-client', client_secret: secret }), false);
    });
  });

  it('refuses two methods in one request with invalid_request (RFC 6749 §2.3)', async () => {
    const res = await token({ client_id: 'post-client', client_secret: postSecret }, basic('basic-client', secret));
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('invalid_request');
    const jwt = await assertion();
    const both = await withAssertion(jwt, { client_secret: postSecret, client_id: 'jwt-client' });
    expect(both.json().error).toBe('invalid_request');
  });

  it('refuses a request with no client authentication at all', async () => {
    expectInvalidClient(await token({}), false);
  });

  // Clients are changed here as the CLI would, from outside the server: the server learns of
  // it through LISTEN/NOTIFY, asynchronously, hence `eventually`.
  describe('secret rotation and expiry', () => {
    it('accepts both secrets during the overlap, then only the new one', async () => {
      const old = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'rotating')).clientSecret!;
      const rotated = (await registryOf(app.context).rotateSecret('rotating', 3600, { source: 'cli' })).clientSecret!;
      expect(rotated).not.toBe(old);
      await eventually(async () => (await token({}, basic('rotating', rotated))).statusCode === 200);
      expect((await token({}, basic('rotating', old))).statusCode).toBe(200);
      clock.advance(3601);
      expectInvalidClient(await token({}, basic('rotating', old)), true);
      expect((await token({}, basic('rotating', rotated))).statusCode).toBe(200);
    });

    it('keeps at most two secrets: a second rotation drops the first secret at once', async () => {
      const first = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'rotating-twice')).clientSecret!;
      const registry = registryOf(app.context);
      const second = (await registry.rotateSecret('rotating-twice', 3600, { source: 'cli' })).clientSecret!;
      const third = (await registry.rotateSecret('rotating-twice', 3600, { source: 'cli' })).clientSecret!;
      await eventually(async () => (await token({}, basic('rotating-twice', third))).statusCode === 200);
      expectInvalidClient(await token({}, basic('rotating-twice', first)), true);
      expect((await token({}, basic('rotating-twice', second))).statusCode).toBe(200);
      expect((await token({}, basic('rotating-twice', third))).statusCode).toBe(200);
    });
  });

  it('refuses a disabled client like a wrong secret, and accepts it again once enabled', async () => {
    const s = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'to-disable')).clientSecret!;
    expect((await token({}, basic('to-disable', s))).statusCode).toBe(200);
    await registryOf(app.context).setDisabled('to-disable', true, { source: 'cli' });
    await eventually(async () => (await token({}, basic('to-disable', s))).statusCode === 401);
    expectInvalidClient(await token({}, basic('to-disable', s)), true);
    await registryOf(app.context).setDisabled('to-disable', false, { source: 'cli' });
    await eventually(async () => (await token({}, basic('to-disable', s))).statusCode === 200);
  });

  describe('private_key_jwt (RFC 7523 §2.2, §3)', () => {
    it('authenticates with an assertion signed by a registered key, aud = token endpoint or issuer', async () => {
      expect((await withAssertion(await assertion())).statusCode).toBe(200);
      expect((await withAssertion(await assertion({ aud: ISSUER }))).statusCode).toBe(200);
      expect((await withAssertion(await assertion(), { client_id: 'jwt-client' })).statusCode).toBe(200);
    });

    it('fetches keys from the jwks_uri once, then serves them from memory', async () => {
      for (let i = 0; i < 5; i++) {
        const jwt = await assertion({ iss: 'remote-jwt-client', sub: 'remote-jwt-client' }, remoteKey, 'EdDSA', 'r1');
        expect((await withAssertion(jwt)).statusCode).toBe(200);
      }
      expect(jwksRequests.filter((p) => p === '/jwks.json')).toEqual(['/jwks.json']);
      expect(await app.context.metrics.registry.getSingleMetricAsString('latchkey_outbound_requests_total')).toContain('latchkey_outbound_requests_total{purpose="jwks_uri",outcome="ok"} 1');
    });

    /** Issue #20 (2): one 60 MB JWKS took the server from 416 to 840 MB and blocked it for 1.5 s. */
    it('refuses a jwks_uri answer over JWKS_URI_MAX_BYTES, or with more than JWKS_URI_MAX_KEYS keys', async () => {
      for (const [id, path, reason] of [
        ['big-jwks-client', '/big.json', 'jwks_uri: response larger than 131072 bytes'],
        ['many-keys-client', '/many.json', 'jwks_uri: 60 keys, more than 50'],
      ]) {
        await createClient(app.context, { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `http://127.0.0.1:${jwksPort}${path}` }, id);
        const jwt = await assertion({ iss: id, sub: id }, remoteKey, 'EdDSA', 'r1');
        expectInvalidClient(await withAssertionFrom('10.9.0.1', jwt), false);
        expect(lastFailure()).toContain(reason);
      }
    });

    /** Issue #20 (1): a client stored before registration checked the target is still never fetched. */
    it('never fetches a jwks_uri on an address the outbound guard refuses, whatever is stored', async () => {
      // As registered before the check existed: the metadata straight into the store.
      const metadata = parseClientMetadata(
        { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `http://[::1]:${jwksPort}/refused.json` },
        { outbound: new OutboundPolicy({ issuer: ISSUER, allowed: ['::1'] }) },
      );
      await new ClientRepository(app.context.store.db, app.context.store.notifier)
        .insert({ clientId: 'stored-refused', metadata, secretHash: null, registrationAccessTokenHash: null, source: 'cli' });
      expectInvalidClient(await withAssertionFrom('10.9.0.2', await assertion({ iss: 'stored-refused', sub: 'stored-refused' }, remoteKey, 'EdDSA', 'r1')), false);
      expect(lastFailure()).toContain('jwks_uri: refused: must not point at an internal address (::1 is loopback)');
      expect(jwksRequests).not.toContain('/refused.json');
    });

    it('refuses a replayed assertion (jti used once)', async () => {
      const jwt = await assertion();
      expect((await withAssertion(jwt)).statusCode).toBe(200);
      expectInvalidClient(await withAssertion(jwt), false, TOLD.replayed);
      expect(lastFailure()).toBe('client_assertion replayed (jti already used)');
    });

    it('refuses an expired assertion, saying so; bare when another key signed it', async () => {
      expectInvalidClient(await withAssertion(await assertion({ exp: now() - 120 })), false,
        "client_assertion has expired: its exp is 120 seconds before this server's time, more than the 30 seconds of leeway (make a new assertion for each request; check the client's clock)");
      expect(lastFailure()).toContain('ERR_JWT_EXPIRED');
      expectInvalidClient(await withAssertion(await assertion({ exp: now() - 120 }, (await generateKeyPair('ES256')).privateKey)), false);
    });

    it('accepts an assertion valid for one hour (Authlib\'s default) and refuses its replay within the hour', async () => {
      const jwt = await assertion({ exp: now() + 3600 });
      expect((await withAssertion(jwt)).statusCode).toBe(200);
      clock.advance(3540);
      expectInvalidClient(await withAssertion(jwt), false, TOLD.replayed);
    });

    it('refuses an assertion valid for longer than one hour, saying so', async () => {
      expectInvalidClient(await withAssertion(await assertion({ exp: now() + 3600 + 31 })), false,
        'client_assertion is valid for too long: its exp is 3631 seconds away, and this server accepts at most 3600 seconds (plus 30 of leeway)');
      expect(lastFailure()).toBe('client_assertion exp is more than 3600s away');
    });

    it('refuses an unknown kid, saying so when a registered key signed it, bare when none did', async () => {
      expectInvalidClient(await withAssertion(await assertion({}, privateKey, 'ES256', 'rotated-away')), false, TOLD.kid);
      expect(lastFailure()).toContain('ERR_JWKS_NO_MATCHING_KEY');
      expectInvalidClient(await withAssertion(await assertion({}, (await generateKeyPair('ES256')).privateKey, 'ES256', 'rotated-away')), false);
      expectInvalidClient(await withAssertion(await assertion({ iss: 'nobody', sub: 'nobody' }, privateKey, 'ES256', 'rotated-away')), false);
    });

    it('refuses a wrong aud', async () => {
      expectInvalidClient(await withAssertion(await assertion({ aud: 'https://elsewhere.example.com/token' })), false);
      expect(lastFailure()).toBe('client_assertion aud must be the issuer identifier "http://localhost:8080" or the token endpoint URL "http://localhost:8080/token" (got "https://elsewhere.example.com/token")');
    });

    // draft-ietf-oauth-rfc7523bis, FAPI 2.0 §5.3.2.1: the issuer identifier alone. Any other
    // endpoint URL, or a list naming this server beside other values, is the audience injection
    // attack (an assertion a client made for one server, replayed at another).
    it('accepts the issuer identifier as the only audience, as a string or a one-element list', async () => {
      expect((await withAssertion(await assertion({ aud: ISSUER }))).statusCode).toBe(200);
      expect((await withAssertion(await assertion({ aud: [ISSUER] }))).statusCode).toBe(200);
    });

    it('refuses the other endpoint URLs (introspection, revocation, PAR) as the audience', async () => {
      for (const path of ['/introspect', '/revoke', '/par']) {
        expectInvalidClient(await withAssertion(await assertion({ aud: `${ISSUER}${path}` })), false);
        expect(lastFailure(), path).toContain(`(got "${ISSUER}${path}")`);
      }
    });

    it('refuses a list of audiences holding this server beside anything else', async () => {
      for (const aud of [[ISSUER, 'https://attacker.example.com'], ['https://attacker.example.com', TOKEN_ENDPOINT], [ISSUER, TOKEN_ENDPOINT], [ISSUER, ISSUER]]) {
        expectInvalidClient(await withAssertion(await assertion({ aud })), false);
        expect(lastFailure(), JSON.stringify(aud)).toBe(`client_assertion aud must be one value, not a list of ${aud.length} (draft-ietf-oauth-rfc7523bis)`);
      }
      expectInvalidClient(await withAssertion(await assertion({ aud: [] })), false);
      expect(lastFailure()).toBe('client_assertion aud must be one value, not a list of 0 (draft-ietf-oauth-rfc7523bis)');
    });

    it('refuses sub different from iss, and a client_id parameter different from iss', async () => {
      expectInvalidClient(await withAssertion(await assertion({ sub: 'someone-else' })), false);
      expectInvalidClient(await withAssertion(await assertion(), { client_id: 'basic-client' }), false);
    });

    it('refuses an assertion without jti', async () => {
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('jwt-client').setSubject('jwt-client')
        .setAudience(TOKEN_ENDPOINT).setIssuedAt(now()).setExpirationTime(now() + 60).sign(privateKey);
      expectInvalidClient(await withAssertion(jwt), false);
      expect(lastFailure()).toContain('missing required "jti" claim');
    });

    it('refuses alg none', async () => {
      const jwt = `${b64url({ alg: 'none' })}.${b64url({ iss: 'jwt-client', sub: 'jwt-client', aud: TOKEN_ENDPOINT, exp: now() + 60, jti: randomUUID() })}.`;
      expectInvalidClient(await withAssertion(jwt), false);
      expect(lastFailure()).toContain('ERR_JOSE_ALG_NOT_ALLOWED');
    });

    it('refuses HS256 signed with the public key as the HMAC secret', async () => {
      const header = b64url({ alg: 'HS256', kid: 'k1' });
      const payload = b64url({ iss: 'jwt-client', sub: 'jwt-client', aud: TOKEN_ENDPOINT, exp: now() + 60, jti: randomUUID() });
      const pem = await exportSPKI(await importJWK(publicJwk, 'ES256') as CryptoKey);
      for (const hmacKey of [JSON.stringify(publicJwk), pem]) {
        const sig = createHmac('sha256', hmacKey).update(`${header}.${payload}`).digest('base64url');
        expectInvalidClient(await withAssertion(`${header}.${payload}.${sig}`), false);
        expect(lastFailure()).toContain('ERR_JOSE_ALG_NOT_ALLOWED');
      }
    });

    it('refuses an assertion signed by another key, and a wrong client_assertion_type', async () => {
      const other = await generateKeyPair('ES256');
      expectInvalidClient(await withAssertion(await assertion({}, other.privateKey)), false);
      expectInvalidClient(await token({ client_assertion_type: 'urn:example:other', client_assertion: await assertion() }), false);
    });

    it('refuses a secret-based client presenting an assertion', async () => {
      const jwt = await assertion({ iss: 'basic-client', sub: 'basic-client' });
      expectInvalidClient(await withAssertion(jwt), false);
    });
  });

  describe('none (public clients)', () => {
    it('identifies a public client by client_id alone (here it then lacks the grant)', async () => {
      const res = await token({ client_id: 'public-client' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('unauthorized_client');
    });

    it('refuses a confidential client that sends only its client_id', async () => {
      expectInvalidClient(await token({ client_id: 'basic-client' }), false);
    });
  });

  it('counts failures by method and records client.auth_failed without the secret', async () => {
    await token({}, basic('basic-client', 'definitely-wrong'));
    const metrics = await app.context.metrics.registry.metrics();
    expect(metrics).toMatch(/latchkey_client_auth_failures_total\{method="client_secret_basic"\} \d+/);
    expect(metrics).toMatch(/latchkey_client_auth_failures_total\{method="private_key_jwt"\} \d+/);
    const event = app.logs.lines.find((l) => l.event === 'client.auth_failed' && l.client_id === 'basic-client');
    expect(event).toMatchObject({ method: 'client_secret_basic', endpoint: 'token', ip: '127.0.0.1' });
    expect(app.logs.text()).not.toContain('definitely-wrong');
  });
});

/**
 * An app of its own, made with `env`, holding one private_key_jwt client (`clientId`, key `k1`),
 * and a client_credentials request from it whose assertion has the given aud and lifetime.
 */
function assertionClientApp(env: Record<string, string>, clientId: string) {
  const made = {} as { app: TestApp; key: CryptoKey };
  beforeAll(async () => {
    made.app = await createTestApp(env);
    const pair = await generateKeyPair('ES256', { extractable: true });
    made.key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
    await createClient(made.app.context, { grant_types: ['client_credentials'], scope: 'read', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } }, clientId);
  });
  afterAll(async () => { await made.app.close(); });
  const token = async (aud: string, lifetime = 60) => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(clientId).setSubject(clientId)
      .setAudience(aud).setIssuedAt(now).setExpirationTime(now + lifetime).sign(made.key);
    return made.app.server.inject({
      method: 'POST', url: '/token', headers: FORM_HEADERS,
      payload: form({ grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt }),
    });
  };
  return { made, token };
}

describe('CLIENT_ASSERTION_TOKEN_ENDPOINT_AUDIENCE=false: the issuer identifier is the only client assertion audience', () => {
  const { made, token } = assertionClientApp({ CLIENT_ASSERTION_TOKEN_ENDPOINT_AUDIENCE: 'false' }, 'strict-jwt');

  it('refuses the token endpoint URL (OpenID Connect Core §9) and accepts the issuer', async () => {
    const refused = await token(TOKEN_ENDPOINT);
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    expect(made.app.logs.lines.filter((l) => l.event === 'client.auth_failed').at(-1)?.reason)
      .toBe('client_assertion aud must be the issuer identifier "http://localhost:8080" (got "http://localhost:8080/token")');
    expect((await token(ISSUER)).statusCode).toBe(200);
  });
});

describe('the per-client limit and client assertions (private_key_jwt)', () => {
  let app: TestApp;
  const clock = new TestClock();
  let key: CryptoKey;
  beforeAll(async () => {
    app = await createTestApp({ TOKEN_RATE_LIMIT_PER_CLIENT: '2', RATE_LIMIT_WINDOW: '1m' }, { clock });
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
    await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } }, 'limited-jwt');
  });
  afterAll(async () => { await app.close(); });

  const assertion = (lifetime = 60) => {
    const now = Math.floor(clock.now().getTime() / 1000);
    return new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('limited-jwt').setSubject('limited-jwt')
      .setAudience(TOKEN_ENDPOINT).setIssuedAt(now).setExpirationTime(now + lifetime).sign(key);
  };
  const token = (jwt: string, ip: string) => app.server.inject({
    method: 'POST', url: '/token', remoteAddress: ip, headers: FORM_HEADERS,
    payload: form({ grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt }),
  });

  it('counts no replayed assertion, and spends no jti on a refused request', async () => {
    const first = await assertion();
    expect((await token(first, '10.5.0.1')).statusCode).toBe(200);
    // Replays of a captured assertion fail and spend nothing of the client's allowance of 2.
    for (const ip of ['10.5.1.1', '10.5.1.2', '10.5.1.3']) expect((await token(first, ip)).statusCode).toBe(401);
    expect((await token(await assertion(), '10.5.0.1')).statusCode).toBe(200);
    // Over the limit: refused before its jti is remembered, so the same assertion works in the next window.
    const third = await assertion(240);
    const refused = await token(third, '10.5.0.1');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
    clock.advance(60);
    expect((await token(third, '10.5.0.1')).statusCode).toBe(200);
  });
});

describe('CLIENT_ASSERTION_MAX_LIFETIME', () => {
  const { token } = assertionClientApp({ CLIENT_ASSERTION_MAX_LIFETIME: '5m' }, 'short-jwt');

  it('refuses an assertion valid for longer than the setting, saying so', async () => {
    expect((await token(ISSUER, 300)).statusCode).toBe(200);
    const refused = await token(ISSUER, 3600);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error_description).toMatch(/^client authentication failed: client_assertion is valid for too long: its exp is 360\d seconds away, and this server accepts at most 300 seconds \(plus 30 of leeway\)$/);
  });
});
