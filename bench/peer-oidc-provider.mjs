// The peer: node-oidc-provider 9 configured for the same work as Latchkey's client_credentials
// benchmark — client_secret_basic, scope api:read, RFC 9068 JWT access tokens signed ES256 for
// the resource urn:bench:api — plus introspection (of opaque tokens for urn:bench:opaque). In-memory adapter (its default), no logging.
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 4200);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'peer-es256' };

const resourceServers = {
  'urn:bench:api': {
    scope: 'api:read',
    audience: 'urn:bench:api',
    accessTokenTTL: 600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  },
  // node-oidc-provider refuses to introspect its JWT access tokens ("Structured JWT Tokens
  // cannot be introspected"), so the introspection scenario asks for this opaque one.
  'urn:bench:opaque': {
    scope: 'api:read',
    audience: 'urn:bench:opaque',
    accessTokenTTL: 600,
    accessTokenFormat: 'opaque',
  },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench',
    client_secret: 'benchsecret-benchsecret-benchsecret-0123',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    // RFC 9701 responses (the introspection_jwt scenario), signed like Latchkey's.
    introspection_signed_response_alg: 'ES256',
    scope: 'api:read',
  }],
  jwks: { keys: [jwk] },
  scopes: ['api:read'],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    jwtIntrospection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:bench:api',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => resourceServers[resource] ?? resourceServers['urn:bench:api'],
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('peer server_error', err));

createServer(provider.callback()).listen(port, '127.0.0.1', () => console.log(`peer ready ${port}`));
