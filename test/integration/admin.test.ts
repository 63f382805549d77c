import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, form, FORM_HEADERS } from '../support/clients.js';

const ADMIN = 'admin-credential-0123456789-abcdefghijklmnop';

describe('admin API (/admin)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ ADMIN_TOKENS: ADMIN }); });
  afterAll(async () => { await app.close(); });

  const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, token = ADMIN) => app.server.inject({
    method, url, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
  const token = (id: string, secret: string) => app.server.inject({
    method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(id, secret) }, payload: form({ grant_type: 'client_credentials' }),
  });

  it('refuses requests without the admin credential with 401 invalid_token', async () => {
    for (const res of [await call('GET', '/admin/clients', undefined, 'wrong'), await app.server.inject({ method: 'GET', url: '/admin/clients' })]) {
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('invalid_token');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="latchkey-admin", error="invalid_token"');
    }
  });

  it('creates, shows, lists, updates, rotates, disables and deletes a client', async () => {
    const created = await call('POST', '/admin/clients', { client_id: 'reports', grant_types: ['client_credentials'], scope: 'reports:read', client_name: 'Reports' });
    expect(created.statusCode).toBe(201);
    const secret = created.json().client_secret as string;
    expect(created.json()).toMatchObject({ client_id: 'reports', client_type: 'confidential', scope: 'reports:read', disabled: false, source: 'admin' });
    expect((await token('reports', secret)).statusCode).toBe(200);

    const shown = await call('GET', '/admin/clients/reports');
    expect(shown.json().client_secret).toBeUndefined();
    expect(shown.json().client_secrets).toEqual([{ slot: 'current', expires_at: null }]);
    expect((await call('GET', '/admin/clients')).json().clients.map((c: { client_id: string }) => c.client_id)).toContain('reports');

    const patched = await call('PATCH', '/admin/clients/reports', { scope: 'reports:read reports:write' });
    expect(patched.json()).toMatchObject({ scope: 'reports:read reports:write', client_name: 'Reports' });
    // `show` output can be sent back as is.
    const replaced = await call('PUT', '/admin/clients/reports', { ...(shown.json() as Record<string, unknown>), client_name: 'Reports v2' });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json()).toMatchObject({ client_name: 'Reports v2', scope: 'reports:read' });

    const rotated = await call('POST', '/admin/clients/reports/rotate-secret', { overlap_seconds: 600 });
    expect(rotated.statusCode).toBe(200);
    const newSecret = rotated.json().client_secret as string;
    expect(newSecret).not.toBe(secret);
    expect(rotated.json().client_secrets).toHaveLength(2);
    expect((await token('reports', secret)).statusCode).toBe(200);
    expect((await token('reports', newSecret)).statusCode).toBe(200);

    expect((await call('POST', '/admin/clients/reports/disable')).json().disabled).toBe(true);
    expect((await token('reports', newSecret)).statusCode).toBe(401);
    expect((await call('POST', '/admin/clients/reports/enable')).json().disabled).toBe(false);

    expect((await call('DELETE', '/admin/clients/reports')).statusCode).toBe(204);
    expect((await call('GET', '/admin/clients/reports')).statusCode).toBe(404);
    expect((await token('reports', newSecret)).statusCode).toBe(401);

    const events = app.logs.lines.filter((l) => l.client_id === 'reports' && String(l.event).startsWith('client.') && l.event !== 'client.auth_failed').map((l) => l.event);
    expect(events).toEqual(['client.created', 'client.updated', 'client.updated', 'client.secret_rotated', 'client.disabled', 'client.enabled', 'client.deleted']);
    expect(app.logs.text()).not.toContain(secret);
    expect(app.logs.text()).not.toContain(newSecret);
  });

  it('validates with the same schema and spec error codes', async () => {
    expect((await call('POST', '/admin/clients', { redirect_uris: ['http://x.example.com/cb'] })).json().error).toBe('invalid_redirect_uri');
    const typo = await call('POST', '/admin/clients', { grant_types: ['client_credentials'], scopes: 'a' });
    expect(typo.statusCode).toBe(400);
    expect(typo.json().error).toBe('invalid_client_metadata');
    await call('POST', '/admin/clients', { client_id: 'dup', grant_types: ['client_credentials'] });
    expect((await call('POST', '/admin/clients', { client_id: 'dup', grant_types: ['client_credentials'] })).json()).toEqual({
      error: 'invalid_client_metadata', error_description: 'client_id: dup is already registered',
    });
    expect((await call('POST', '/admin/clients', { client_id: 'bad id', grant_types: ['client_credentials'] })).json().error).toBe('invalid_client_metadata');
    expect((await call('POST', '/admin/clients/dup/rotate-secret', { overlap_seconds: -1 })).json().error).toBe('invalid_request');
    expect((await call('PATCH', '/admin/clients/nobody', { scope: 'a' })).statusCode).toBe(404);
  });

  it('marks a resource server that may introspect every token (introspect_any_token), and unmarks it', async () => {
    const owner = (await call('POST', '/admin/clients', { client_id: 'owner', grant_types: ['client_credentials'] })).json().client_secret as string;
    const rs = (await call('POST', '/admin/clients', { client_id: 'orders-api', grant_types: ['client_credentials'] })).json().client_secret as string;
    const accessToken = (await token('owner', owner)).json().access_token as string;
    const introspect = async () => (await app.server.inject({
      method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic('orders-api', rs) }, payload: form({ token: accessToken }),
    })).json();
    expect(await introspect()).toEqual({ active: false });
    expect((await call('PATCH', '/admin/clients/orders-api', { introspect_any_token: true })).json()).toMatchObject({ introspect_any_token: true });
    expect(await introspect()).toMatchObject({ active: true, client_id: 'owner' });
    expect((await call('PATCH', '/admin/clients/orders-api', { introspect_any_token: false })).json()).toMatchObject({ introspect_any_token: false });
    expect(await introspect()).toEqual({ active: false });
    expect((await call('PATCH', '/admin/clients/orders-api', { introspect_any_token: 'yes' })).json()).toEqual({
      error: 'invalid_client_metadata', error_description: 'introspect_any_token: Invalid input: expected boolean, received string',
    });
  });

  it('recomputes response_types when a merge changes grant_types', async () => {
    await call('POST', '/admin/clients', { client_id: 'switcher', grant_types: ['authorization_code'], redirect_uris: ['https://s.example.com/cb'] });
    const res = await call('PATCH', '/admin/clients/switcher', { grant_types: ['client_credentials'] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ grant_types: ['client_credentials'], response_types: [] });
  });
});

describe('admin API without ADMIN_TOKENS', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp(); });
  afterAll(async () => { await app.close(); });

  it('is not served (404)', async () => {
    expect((await app.server.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: 'Bearer anything' } })).statusCode).toBe(404);
  });
});
