import type { FastifyPluginAsync } from 'fastify';
import type { DiscoveryRegistry } from '../../oauth/discovery.js';
import { sendCacheableJson, strongEtag } from './cacheable.js';
import { allowCors } from './cors.js';

/**
 * The JWK Set (RFC 7517 §5) at /jwks and /.well-known/jwks.json. Its max-age is never longer
 * than the publish-ahead period (config validation), so every verifier's cached copy holds a
 * key before it signs anything.
 */
export function jwksRoutes(keys: { jwksDocument(): string }, maxAgeSeconds: number): FastifyPluginAsync {
  return async (app) => {
    const paths = ['/jwks', '/.well-known/jwks.json'];
    // Public documents: any origin may read them (RFC 9700 §2.6).
    const cors = allowCors(app, paths, { methods: ['GET'], origins: 'any' });
    for (const path of paths) {
      app.get(path, { onSend: cors }, async (req, reply) => {
        const body = keys.jwksDocument();
        return sendCacheableJson(req, reply, body, strongEtag(body), maxAgeSeconds);
      });
    }
  };
}

/**
 * Authorization server metadata at both well-known locations: OpenID Connect Discovery 1.0 §4
 * and RFC 8414 §3. The document is built on each request from what is enabled right now.
 */
export function discoveryRoutes(discovery: DiscoveryRegistry, maxAgeSeconds: number): FastifyPluginAsync {
  return async (app) => {
    const paths = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];
    const cors = allowCors(app, paths, { methods: ['GET'], origins: 'any' });
    for (const path of paths) {
      app.get(path, { onSend: cors }, async (req, reply) => {
        const body = JSON.stringify(discovery.build());
        return sendCacheableJson(req, reply, body, strongEtag(body), maxAgeSeconds);
      });
    }
  };
}
