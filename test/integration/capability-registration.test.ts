import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { clientCredentials } from '../../src/capabilities/client-credentials/index.js';
import { CLIENT_CREDENTIALS } from '../../src/capabilities/client-credentials/client-credentials-grant.js';
import { tokenResponse, type GrantType, type TokenGrant } from '../../src/oauth/token-endpoint/grant.js';
import type { Capability } from '../../src/server/context.js';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * The registration contract of src/server/context.ts, through a whole app: what a capability
 * returns from `register` is what the server serves — a new grant is its file plus a
 * registration, and nothing else changes.
 */

const EXAMPLE_GRANT: GrantType = { grantType: 'urn:example:grant', publicClients: false };

/** A grant that issues a fixed answer and reports an audit event of its own. */
const exampleGrant: TokenGrant<'x'> = {
  ...EXAMPLE_GRANT,
  parameters: ['x'],
  async handle({ client, params }) {
    return {
      response: tokenResponse({ token: `token-for-${params.x ?? ''}`, expiresIn: 60 }, ''),
      issued: { sub: client.clientId, scope: '', jti: 'example-jti' },
      audit: [{ event: 'example.happened', fields: { client_id: client.clientId, x: params.x } }],
    };
  },
};

const example: Capability = {
  name: 'example',
  grantTypes: [EXAMPLE_GRANT],
  register: () => ({
    grants: [exampleGrant],
    routes: [async (app) => { app.get('/example', async () => ({ example: true })); }],
    discovery: () => ({ example_endpoint: 'http://localhost:8080/example' }),
    cleanup: [{ name: 'example_rows', batch: () => sql`delete from sessions where false` }],
  }),
};

let app: TestApp | undefined;
afterEach(async () => { await app?.close(); app = undefined; });

describe('a capability registers what it brings (src/server/context.ts)', () => {
  it('serves its routes, its grant at /token (with its audit event), its discovery members and its cleanup step', async () => {
    app = await createTestApp({}, { capabilities: [clientCredentials, example] });
    const created = await app.services.registry.create({ grant_types: ['urn:example:grant'] }, { source: 'cli' });
    expect(created.client.metadata.grant_types).toEqual(['urn:example:grant']);

    expect((await app.server.inject({ method: 'GET', url: '/example' })).json()).toEqual({ example: true });

    const token = await app.server.inject({
      method: 'POST', url: '/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${created.client.clientId}:${created.clientSecret}`).toString('base64')}`,
      },
      payload: 'grant_type=urn%3Aexample%3Agrant&x=42',
    });
    expect(token.statusCode).toBe(200);
    expect(token.json()).toEqual({ access_token: 'token-for-42', token_type: 'Bearer', expires_in: 60 });
    const events = app.logs.lines.filter((l) => l.event === 'example.happened');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ client_id: created.client.clientId, x: '42' });

    const metadata = (await app.server.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json();
    expect(metadata.example_endpoint).toBe('http://localhost:8080/example');
    expect(metadata.grant_types_supported).toEqual(['client_credentials', 'urn:example:grant']);

    expect(await app.services.runCleanup()).toMatchObject({ example_rows: 0 });
  });

  it('lets clients register only the grant types of the registered capabilities', async () => {
    app = await createTestApp({}, { capabilities: [clientCredentials] });
    await expect(app.services.registry.create({ grant_types: ['urn:example:grant'] }, { source: 'cli' }))
      .rejects.toThrow('grant_types.0: Invalid input: expected "client_credentials"');
  });

  it('refuses to start with a grant the capability does not declare', async () => {
    const undeclared: Capability = { name: 'undeclared', register: () => ({ grants: [exampleGrant] }) };
    await expect(createTestApp({}, { capabilities: [undeclared] }))
      .rejects.toThrow('capability undeclared serves the urn:example:grant grant without declaring it in grantTypes');
  });

  it('refuses to start with a grant type declared but not served (clients could register a grant nobody serves)', async () => {
    const declaredOnly: Capability = { name: 'declared-only', grantTypes: [CLIENT_CREDENTIALS], register: () => ({}) };
    await expect(createTestApp({}, { capabilities: [declaredOnly] }))
      .rejects.toThrow('grant types declared but not served: client_credentials');
  });

  it('refuses two grants of one grant type', async () => {
    const twice: Capability = { name: 'twice', grantTypes: [EXAMPLE_GRANT], register: () => ({ grants: [exampleGrant, exampleGrant] }) };
    await expect(createTestApp({}, { capabilities: [twice] })).rejects.toThrow('grant type urn:example:grant registered twice');
  });
});
