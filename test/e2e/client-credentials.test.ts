import { exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { createClient } from '../support/clients.js';
import { freePort } from '../support/process.js';

/** A real OAuth client library (oauth4webapi) against Latchkey over real HTTP. */
describe('client_credentials end to end with oauth4webapi', () => {
  let app: TestApp;
  let as: oauth.AuthorizationServer;
  let basicSecret: string;
  let jwtKey: CryptoKey;
  const options = { [oauth.allowInsecureRequests]: true } as const;

  beforeAll(async () => {
    const port = await freePort();
    app = await createTestApp({ ISSUER: `http://127.0.0.1:${port}` });
    await app.server.listen({ port, host: '127.0.0.1' });
    // Metadata as discovery will publish it (the discovery endpoint itself is served elsewhere).
    as = app.context.discovery.build() as unknown as oauth.AuthorizationServer;

    basicSecret = (await createClient(app.context, { grant_types: ['client_credentials'], scope: 'orders:read orders:write', resources: ['https://orders.example.com'] }, 'orders-worker')).clientSecret!;
    const pair = await generateKeyPair('ES256', { extractable: true });
    jwtKey = pair.privateKey;
    await createClient(app.context, {
      grant_types: ['client_credentials'], scope: 'orders:read', token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'worker-key', alg: 'ES256' }] },
    }, 'jwt-worker');
    await createClient(app.context, { grant_types: ['client_credentials'], introspect_any_token: true }, 'gateway').then((c) => { gatewaySecret = c.clientSecret!; });
  });
  let gatewaySecret: string;
  afterAll(async () => { await app.close(); });

  it('obtains a token with client_secret_basic and introspects it', async () => {
    const client: oauth.Client = { client_id: 'orders-worker' };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(basicSecret), { scope: 'orders:read' }, options);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const tokens = await oauth.processClientCredentialsResponse(as, client, response);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('orders:read');
    expect(tokens.expires_in).toBe(600);

    const gateway: oauth.Client = { client_id: 'gateway' };
    const introspection = await oauth.processIntrospectionResponse(as, gateway,
      await oauth.introspectionRequest(as, gateway, oauth.ClientSecretBasic(gatewaySecret), tokens.access_token, options));
    expect(introspection).toMatchObject({
      active: true, client_id: 'orders-worker', sub: 'orders-worker', scope: 'orders:read', aud: 'https://orders.example.com', iss: as.issuer, token_type: 'Bearer',
    });
  });

  it('introspects with a signed JWT response (RFC 9701), verified by the library against the JWKS', async () => {
    const client: oauth.Client = { client_id: 'orders-worker' };
    const tokens = await oauth.processClientCredentialsResponse(as, client,
      await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(basicSecret), { scope: 'orders:write' }, options));
    const gateway: oauth.Client = { client_id: 'gateway' };
    const response = await oauth.introspectionRequest(as, gateway, oauth.ClientSecretBasic(gatewaySecret), tokens.access_token, { ...options, requestJwtResponse: true });
    expect(response.headers.get('content-type')).toBe('application/token-introspection+jwt');
    const copy = response.clone();
    // The library checks typ, iss, aud = its client_id, iat and the alg against discovery's list.
    const introspection = await oauth.processIntrospectionResponse(as, gateway, response);
    await oauth.validateApplicationLevelSignature(as, response, options);
    expect(introspection).toMatchObject({ active: true, client_id: 'orders-worker', scope: 'orders:write', aud: 'https://orders.example.com', token_type: 'Bearer' });

    // Another resource server cannot pass off the gateway's response as its own: the audience is the gateway.
    const other: oauth.Client = { client_id: 'orders-worker' };
    const replayed = await oauth.processIntrospectionResponse(as, other, new Response(await copy.text(), { headers: { 'content-type': 'application/token-introspection+jwt' } }))
      .catch((e: unknown) => e);
    expect(replayed).toBeInstanceOf(oauth.OperationProcessingError);
    expect((replayed as oauth.OperationProcessingError).message).toContain('"aud"');
  });

  it('obtains a token with private_key_jwt', async () => {
    const client: oauth.Client = { client_id: 'jwt-worker' };
    const auth = oauth.PrivateKeyJwt({ key: jwtKey, kid: 'worker-key' });
    const tokens = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, auth, {}, options));
    expect(tokens.scope).toBe('orders:read');

    // The same assertion mechanism authenticates the introspection call; the token is active.
    const introspection = await oauth.processIntrospectionResponse(as, client,
      await oauth.introspectionRequest(as, client, oauth.PrivateKeyJwt({ key: jwtKey, kid: 'worker-key' }), tokens.access_token, options));
    expect(introspection.active).toBe(true);
    expect(introspection.client_id).toBe('jwt-worker');
  });

  it('surfaces a wrong secret as a 401 with a Basic challenge', async () => {
    const client: oauth.Client = { client_id: 'orders-worker' };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic('wrong'), {}, options);
    const err = await oauth.processClientCredentialsResponse(as, client, response).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    expect((err as oauth.WWWAuthenticateChallengeError).status).toBe(401);
    expect((err as oauth.WWWAuthenticateChallengeError).cause[0]).toMatchObject({ scheme: 'basic', parameters: { realm: 'latchkey' } });
    expect(await (err as oauth.WWWAuthenticateChallengeError).response.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });
});
