import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyClientsFile } from '../../src/oauth/clients/clients-file.js';
import { GRANT_TYPES } from '../../src/server/capabilities.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { hashSecret } from '../../src/oauth/client.js';
import { ClientRepository } from '../../src/oauth/clients/store.js';
import type { OAuthError } from '../../src/oauth/errors.js';
import { basic, createClient, form, FORM_HEADERS, parseClientMetadata, registryOf } from '../support/clients.js';

const IAT = 'initial-access-token-0123456789-abcdefghij';
const IAT2 = 'second-initial-access-token-0123456789-xyz';

describe('Dynamic Client Registration (RFC 7591) and management (RFC 7592)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ INITIAL_ACCESS_TOKEN: `${IAT}, ${IAT2}` }); });
  afterAll(async () => { await app.close(); });

  const register = (body: unknown, token = IAT) => app.server.inject({
    method: 'POST', url: '/register', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
  });
  const manage = (method: 'GET' | 'PUT' | 'DELETE', uri: string, token: string, body?: unknown) => app.server.inject({
    method, url: new URL(uri).pathname, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });

  it('registers a confidential client: 201 with client_id, a secret shown once, and a registration access token', async () => {
    const res = await register({ client_name: 'Inventory', grant_types: ['client_credentials'], scope: 'stock:read', unknown_member: 'ignored' });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({
      client_name: 'Inventory', grant_types: ['client_credentials'], scope: 'stock:read', token_endpoint_auth_method: 'client_secret_basic',
      client_secret_expires_at: 0, registration_client_uri: `http://localhost:8080/register/${body.client_id}`,
    });
    expect(body.client_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.registration_access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.unknown_member).toBeUndefined();
    expect(body.client_id_issued_at).toEqual(expect.any(Number));
    // The new client can obtain a token at once.
    const token = await app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(body.client_id, body.client_secret) }, payload: form({ grant_type: 'client_credentials' }) });
    expect(token.statusCode).toBe(200);
    // Secrets are stored as hashes only.
    const row = await app.context.store.db.selectFrom('clients').selectAll().where('client_id', '=', body.client_id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(body.client_secret);
    expect(JSON.stringify(row)).not.toContain(body.registration_access_token);
  });

  it('accepts any of the configured initial access tokens', async () => {
    expect((await register({ grant_types: ['client_credentials'] }, IAT2)).statusCode).toBe(201);
  });

  it('registers a resource server\'s introspection_signed_response_alg; encryption is not offered, so not echoed (RFC 9701 §6, RFC 7591 §3.2.1)', async () => {
    const res = await register({ grant_types: ['client_credentials'], introspection_signed_response_alg: 'EdDSA', introspection_encrypted_response_alg: 'RSA-OAEP-256' });
    expect(res.statusCode).toBe(201);
    expect(res.json().introspection_signed_response_alg).toBe('EdDSA');
    expect(res.json().introspection_encrypted_response_alg).toBeUndefined();
  });

  it('registers a public native client without a secret', async () => {
    const res = await register({ redirect_uris: ['com.example.app:/cb', 'http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' });
    expect(res.statusCode).toBe(201);
    expect(res.json().client_secret).toBeUndefined();
    expect(res.json().client_secret_expires_at).toBeUndefined();
    expect(res.json().response_types).toEqual(['code']);
  });

  it('refuses a request without a valid initial access token with 401 invalid_token', async () => {
    const res = await register({ grant_types: ['client_credentials'] }, 'wrong-token');
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toBe('invalid_token');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="latchkey-registration", error="invalid_token"');
    const none = await app.server.inject({ method: 'POST', url: '/register', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expect(none.statusCode).toBe(401);
  });

  it.each([
    [{ redirect_uris: ['http://app.example.com/cb'] }, 'invalid_redirect_uri'],
    [{ redirect_uris: ['https://app.example.com/cb#frag'] }, 'invalid_redirect_uri'],
    [{ redirect_uris: ['https://*.example.com/cb'] }, 'invalid_redirect_uri'],
    [{ redirect_uris: ['myapp:/cb'] }, 'invalid_redirect_uri'],
    [{ grant_types: ['implicit'] }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'], skip_consent: true }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'], introspect_any_token: true }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'], scope: 'a', default_scope: 'b' }, 'invalid_client_metadata'],
    [{ grant_types: 'client_credentials' }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'], introspection_signed_response_alg: 'HS256' }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'], introspection_signed_response_alg: 'none' }, 'invalid_client_metadata'],
    [['not', 'an', 'object'], 'invalid_client_metadata'],
  ])('refuses %j with %s', async (body, error) => {
    const before = await app.context.store.db.selectFrom('clients').select('client_id').execute();
    const res = await register(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe(error);
    expect(await app.context.store.db.selectFrom('clients').select('client_id').execute()).toHaveLength(before.length);
  });

  describe('links a person is shown must be on a redirect URI\'s scheme and host (RFC 7591 §5)', () => {
    const APP = { redirect_uris: ['https://app.example.com/cb', 'https://login.example.org/cb'], client_name: 'Your Bank' };
    it.each([
      ['policy_uri', 'https://bank.example.com/privacy'],
      ['tos_uri', 'https://bank.example.com/terms'],
      ['logo_uri', 'https://cdn.example.net/logo.png'],
      ['client_uri', 'https://bank.example.com/'],
      ['policy_uri', 'https://example.com/privacy'],
      ['policy_uri', 'http://127.0.0.1/privacy'],
    ])('refuses a foreign %s (%s) with invalid_client_metadata naming it', async (member, uri) => {
      const res = await register({ ...APP, [member]: uri });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({
        error: 'invalid_client_metadata',
        error_description: `${member}: must have the scheme and host of one of the redirect_uris (RFC 7591 §5)`,
      });
    });
    it('refuses another scheme on the same host, and any link of a client without redirect URIs', async () => {
      const loopback = await register({ redirect_uris: ['http://127.0.0.1/cb'], policy_uri: 'https://127.0.0.1/privacy' });
      expect(loopback.json().error_description).toBe('policy_uri: must have the scheme and host of one of the redirect_uris (RFC 7591 §5)');
      const m2m = await register({ grant_types: ['client_credentials'], client_uri: 'https://inventory.example.com/' });
      expect(m2m.json().error_description).toBe('client_uri: must have the scheme and host of one of the redirect_uris (RFC 7591 §5)');
    });
    it('accepts links on any redirect URI\'s host, whatever their port or path', async () => {
      const res = await register({
        ...APP, policy_uri: 'https://app.example.com/privacy', tos_uri: 'https://login.example.org:8443/tos',
        logo_uri: 'https://app.example.com/logo.png', client_uri: 'https://login.example.org/',
      });
      expect(res.statusCode).toBe(201);
    });
    it('applies to RFC 7592 updates too', async () => {
      const created = (await register(APP)).json();
      const res = await manage('PUT', created.registration_client_uri, created.registration_access_token, {
        client_id: created.client_id, ...APP, policy_uri: 'https://bank.example.com/privacy',
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error_description).toBe('policy_uri: must have the scheme and host of one of the redirect_uris (RFC 7591 §5)');
    });
    it('not to clients an administrator creates', async () => {
      const created = await createClient(app.context, { ...APP, policy_uri: 'https://bank.example.com/privacy' });
      expect(created.client.metadata.policy_uri).toBe('https://bank.example.com/privacy');
    });
  });

  it('reads, updates and deletes the client with its registration access token (RFC 7592)', async () => {
    const created = (await register({ grant_types: ['client_credentials'], scope: 'a' })).json();
    const uri = created.registration_client_uri as string;
    const rat = created.registration_access_token as string;

    const read = await manage('GET', uri, rat);
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ client_id: created.client_id, scope: 'a', registration_client_uri: uri });
    expect(read.json().client_secret).toBeUndefined();
    expect(read.json().registration_access_token).toBeUndefined();

    const updated = await manage('PUT', uri, rat, { client_id: created.client_id, client_secret: created.client_secret, grant_types: ['client_credentials'], scope: 'a b', client_name: 'Renamed' });
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({ client_id: created.client_id, scope: 'a b', client_name: 'Renamed' });

    expect((await manage('PUT', uri, rat, { client_id: 'someone-else', grant_types: ['client_credentials'] })).json().error).toBe('invalid_request');
    expect((await manage('PUT', uri, rat, { client_id: created.client_id, client_secret: 'wrong', grant_types: ['client_credentials'] })).json().error).toBe('invalid_request');
    expect((await manage('PUT', uri, rat, { client_id: created.client_id, redirect_uris: ['http://x.example.com'] })).json().error).toBe('invalid_redirect_uri');

    const deleted = await manage('DELETE', uri, rat);
    expect(deleted.statusCode).toBe(204);
    // RFC 7592 §2: a client that no longer exists answers 401.
    expect((await manage('GET', uri, rat)).statusCode).toBe(401);
    const token = await app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(created.client_id, created.client_secret) }, payload: form({ grant_type: 'client_credentials' }) });
    expect(token.statusCode).toBe(401);
  });

  it('keeps what an administrator granted (skip_consent, introspect_any_token) through RFC 7592 updates, and lets no registrant grant it itself', async () => {
    const created = (await register({ grant_types: ['client_credentials'], scope: 'a' })).json();
    const uri = created.registration_client_uri as string;
    const rat = created.registration_access_token as string;
    const refused = await manage('PUT', uri, rat, { client_id: created.client_id, grant_types: ['client_credentials'], introspect_any_token: true });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual({ error: 'invalid_client_metadata', error_description: 'introspect_any_token: may only be set by an administrator' });

    await registryOf(app.context).update(created.client_id, { introspect_any_token: true, skip_consent: true }, { source: 'admin', merge: true });
    // A client that sends back what it read (RFC 7592 §2.2) keeps it, and so does one that leaves it out.
    const read = (await manage('GET', uri, rat)).json();
    expect(read).toMatchObject({ introspect_any_token: true, skip_consent: true });
    const { registration_client_uri: _u, client_id_issued_at: _i, client_secret_expires_at: _e, ...metadata } = read;
    const echoed = await manage('PUT', uri, rat, { ...metadata, client_name: 'Echoed' });
    expect(echoed.statusCode).toBe(200);
    expect(echoed.json()).toMatchObject({ client_name: 'Echoed', introspect_any_token: true, skip_consent: true });
    const omitted = await manage('PUT', uri, rat, { client_id: created.client_id, grant_types: ['client_credentials'], skip_consent: false });
    expect(omitted.statusCode).toBe(200);
    expect(omitted.json()).toMatchObject({ introspect_any_token: true, skip_consent: true });
  });

  it('refuses management with a wrong token, or another client\'s token, with 401 invalid_token', async () => {
    const one = (await register({ grant_types: ['client_credentials'] })).json();
    const two = (await register({ grant_types: ['client_credentials'] })).json();
    expect((await manage('GET', one.registration_client_uri, 'wrong')).statusCode).toBe(401);
    const cross = await manage('DELETE', one.registration_client_uri, two.registration_access_token);
    expect(cross.statusCode).toBe(401);
    expect(cross.json().error).toBe('invalid_token');
    expect((await manage('GET', one.registration_client_uri, one.registration_access_token)).statusCode).toBe(200);
  });

  it('refuses JSON holding an unpaired surrogate with 400 invalid_request and registers nothing; a well-formed pair is kept', async () => {
    const before = (await app.context.store.db.selectFrom('clients').select('client_id').execute()).length;
    const raw = (json: string) => app.server.inject({
      method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' }, payload: json,
    });
    // JSON.stringify would escape the lone surrogate the same way: \ud800 inside a string.
    for (const json of [
      '{"client_name":"A\\ud800","grant_types":["client_credentials"]}',
      '{"redirect_uris":["https://app.example.com/cb\\udc00"]}',
      '{"\\ud800":"x","grant_types":["client_credentials"]}',
      '{"grant_types":["client_credentials"],"x":[[{"y":"\\udbff"}]]}',
    ]) {
      const res = await raw(json);
      expect(res.statusCode, json).toBe(400);
      expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'the JSON body holds a string that is not well-formed Unicode (an unpaired surrogate)' });
    }
    expect((await app.context.store.db.selectFrom('clients').select('client_id').execute()).length).toBe(before);
    const ok = await raw('{"client_name":"Rocket \\ud83d\\ude80","grant_types":["client_credentials"]}');
    expect(ok.statusCode).toBe(201);
    expect(ok.json().client_name).toBe('Rocket \u{1F680}');
  });

  it('advertises the registration endpoint', () => {
    expect(app.context.discovery.build().registration_endpoint).toBe('http://localhost:8080/register');
  });
});

describe('localhost redirect URIs on a server not on loopback (RFC 8252 §8.3)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ ISSUER: 'https://id.example.com', INITIAL_ACCESS_TOKEN: IAT }); });
  afterAll(async () => { await app.close(); });

  const register = (body: unknown) => app.server.inject({
    method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
  });
  const NATIVE = { redirect_uris: ['http://localhost:7000/callback'], token_endpoint_auth_method: 'none' };
  const REFUSED = {
    error: 'invalid_redirect_uri',
    error_description: 'redirect_uris: http://localhost:7000/callback: localhost is NOT RECOMMENDED in a loopback redirect URI (RFC 8252 §8.3) and is accepted only when the issuer is on loopback; use http://127.0.0.1:7000/callback or http://[::1]:7000/callback',
  };

  it('refuses a new registration naming localhost, and takes the IP literals', async () => {
    const refused = await register(NATIVE);
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual(REFUSED);
    expect((await register({ ...NATIVE, redirect_uris: ['http://127.0.0.1/callback', 'http://[::1]/callback'] })).statusCode).toBe(201);
  });

  it('refuses it from an administrator too (CLI, admin API)', async () => {
    const err = await registryOf(app.context).create(NATIVE, { source: 'admin' }).then(() => undefined, (e: unknown) => e);
    expect((err as OAuthError).toJSON()).toEqual(REFUSED);
  });

  it('keeps a client stored with a localhost redirect URI working, and lets it keep that URI through updates', async () => {
    // Registered before the rule: stored as it was then.
    const rat = 'registration-access-token-0123456789-abcdef';
    await new ClientRepository(app.context.store.db, app.context.store.notifier).insert({
      clientId: 'legacy-native', metadata: parseClientMetadata(NATIVE), secretHash: null, registrationAccessTokenHash: hashSecret(rat), source: 'registration',
    });
    const authorize = await app.server.inject({
      method: 'GET',
      url: `/authorize?${form({ response_type: 'code', client_id: 'legacy-native', redirect_uri: 'http://localhost:7000/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's' })}`,
    });
    expect(authorize.statusCode).toBe(303);
    // Sent on to sign in, not to an error page: the stored redirect URI still matches.
    expect(new URL(authorize.headers.location!, 'https://id.example.com').pathname).toBe('/login');
    const manage = (body: unknown) => app.server.inject({
      method: 'PUT', url: '/register/legacy-native', headers: { authorization: `Bearer ${rat}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
    });
    const kept = await manage({ client_id: 'legacy-native', ...NATIVE, client_name: 'Renamed' });
    expect(kept.statusCode).toBe(200);
    expect(kept.json()).toMatchObject({ client_name: 'Renamed', redirect_uris: ['http://localhost:7000/callback'] });
    const added = await manage({ client_id: 'legacy-native', ...NATIVE, redirect_uris: ['http://localhost:7000/callback', 'http://localhost:7001/callback'] });
    expect(added.statusCode).toBe(400);
    expect(added.json().error_description).toMatch(/^redirect_uris: http:\/\/localhost:7001\/callback: localhost is NOT RECOMMENDED/);
  });
});

/**
 * Issue #20 (1): the URIs the server itself sends requests to are refused where the outbound
 * fetcher would refuse them — internal addresses in any notation, http on an https issuer —
 * with invalid_client_metadata naming the member, whoever registers the client.
 */
describe('registration refuses server-side request targets the outbound fetcher would refuse', () => {
  const INTERNAL = [
    'http://127.0.0.1:8080/x', 'http://2130706433/x', 'http://0x7f.1/x', 'http://localhost:9000/x', 'http://[::1]/x',
    'https://127.0.0.1/x', 'https://0177.0.0.1/x', 'https://127.1/x', 'https://[::ffff:127.0.0.1]/x', 'https://[::ffff:7f00:1]/x',
    'https://169.254.169.254/latest/meta-data/', 'https://[::ffff:a9fe:a9fe]/x', 'https://10.0.0.5/x', 'https://192.168.1.10/x',
    'https://172.20.0.1/x', 'https://[fd00::1]/x', 'https://[fe80::1]/x', 'https://0.0.0.0/x', 'https://0/x', 'https://224.0.0.1/x',
    'https://app.localhost/x',
  ];
  const metadata = (member: string, uri: string) => (member === 'jwks_uri'
    ? { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: uri }
    : { redirect_uris: ['https://app.example.com/cb'], backchannel_logout_uri: uri });

  for (const [issuer, extra] of [['http://localhost:8080', []], ['https://id.example.com', ['http://keys.example.com/x', 'http://127.0.0.1:9000/x']]] as const) {
    describe(`issuer ${issuer}`, () => {
      let app: TestApp;
      beforeAll(async () => { app = await createTestApp({ ISSUER: issuer, INITIAL_ACCESS_TOKEN: IAT }); });
      afterAll(async () => { await app.close(); });
      const register = (body: unknown) => app.server.inject({
        method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
      });

      for (const member of ['jwks_uri', 'backchannel_logout_uri']) {
        it(`${member}: 400 invalid_client_metadata naming the member, nothing registered`, async () => {
          const count = async () => (await app.context.store.db.selectFrom('clients').select('client_id').execute()).length;
          const before = await count();
          for (const uri of [...INTERNAL, ...extra]) {
            const res = await register(metadata(member, uri));
            expect(res.statusCode, uri).toBe(400);
            expect(res.json().error, uri).toBe('invalid_client_metadata');
            expect(res.json().error_description, uri).toMatch(new RegExp(`^${member}: must (not point at an internal address|be an https URL)`));
          }
          expect(await count()).toBe(before);
          expect((await register(metadata(member, 'https://rp.example.com/x'))).statusCode).toBe(201);
        });
      }
    });
  }

  it('refuses them from an operator too (CLI, admin API, clients file), unless OUTBOUND_ALLOWED_HOSTS allows the target', async () => {
    const ADMIN = 'admin-credential-for-the-outbound-test-0123456789';
    const strict = await createTestApp({ ADMIN_TOKENS: ADMIN });
    const allowing = await createTestApp({ OUTBOUND_ALLOWED_HOSTS: '127.0.0.1,10.0.0.0/8' });
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-outbound-'));
    try {
      for (const uri of ['http://127.0.0.1:9000/bc', 'https://10.0.0.5/bc']) {
        await expect(createClient(strict.context, metadata('backchannel_logout_uri', uri)))
          .rejects.toMatchObject({ error: 'invalid_client_metadata', description: expect.stringMatching(/^backchannel_logout_uri: must not point at an internal address/) });
        const admin = await strict.server.inject({
          method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
          payload: JSON.stringify(metadata('backchannel_logout_uri', uri)),
        });
        expect(admin.statusCode).toBe(400);
        expect(admin.json().error_description).toMatch(/^backchannel_logout_uri: must not point at an internal address/);
        const file = join(dir, 'clients.json');
        writeFileSync(file, JSON.stringify({ clients: [{ client_id: 'filed', token_endpoint_auth_method: 'none', ...metadata('backchannel_logout_uri', uri) }] }));
        const applyTo = (app: TestApp) => applyClientsFile(file, {}, new ClientRepository(app.context.store.db, app.context.store.notifier), app.context.audit,
          { grantTypes: GRANT_TYPES, issuer: app.context.config.issuer, outbound: app.context.outbound.policy });
        await expect(applyTo(strict)).rejects.toThrow(`CLIENTS_FILE ${file}: client "filed": backchannel_logout_uri: must not point at an internal address`);
        expect(await applyTo(allowing)).toEqual({ filed: uri === 'http://127.0.0.1:9000/bc' ? 'created' : 'updated' });
        expect((await createClient(allowing.context, metadata('backchannel_logout_uri', uri))).client.metadata.backchannel_logout_uri).toBe(uri);
      }
      await expect(createClient(allowing.context, metadata('jwks_uri', 'https://192.168.0.1/jwks'))).rejects.toMatchObject({ error: 'invalid_client_metadata' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await strict.close();
      await allowing.close();
    }
  });
});

describe('registration disabled (no INITIAL_ACCESS_TOKEN)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp(); });
  afterAll(async () => { await app.close(); });

  it('answers 404 and does not advertise registration_endpoint', async () => {
    const res = await app.server.inject({ method: 'POST', url: '/register', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expect(res.statusCode).toBe(404);
    expect(app.context.discovery.build().registration_endpoint).toBeUndefined();
  });
});

describe('registration with REGISTRATION_ALLOW_FOREIGN_URIS=true', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ INITIAL_ACCESS_TOKEN: IAT, REGISTRATION_ALLOW_FOREIGN_URIS: 'true' }); });
  afterAll(async () => { await app.close(); });

  it('accepts links on other hosts', async () => {
    const res = await app.server.inject({
      method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ redirect_uris: ['https://app.example.com/cb'], policy_uri: 'https://legal.example.net/privacy', logo_uri: 'https://cdn.example.net/l.png' }),
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().policy_uri).toBe('https://legal.example.net/privacy');
  });
});
