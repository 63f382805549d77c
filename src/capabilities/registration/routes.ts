import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Config } from '../../server/context.js';
import { hashMatches, type Client } from '../../oauth/client.js';
import type { OriginMembers } from '../../oauth/client-metadata.js';
import { InvalidClientMetadata, InvalidRequest } from '../../oauth/errors.js';
import type { Metrics } from '../../platform/observability/metrics.js';
import type { Clock } from '../../platform/clock.js';
import type { Services } from '../../server/context.js';
import { bearerToken, credentialChecker, invalidToken } from '../../server/http/bearer.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { allowCors, liveClientMetadata } from '../../server/http/cors.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { foreignLinkProblem } from './client-links.js';
import { withDefaultScope } from './default-scope.js';

/** Response members the server owns (RFC 7591 §3.2.1, RFC 7592 §3): never taken from a request body as metadata. */
const SERVER_OWNED = ['client_id', 'client_secret', 'client_id_issued_at', 'client_secret_expires_at', 'registration_access_token', 'registration_client_uri'];

function metadataOf(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidClientMetadata('the request body must be a JSON object');
  return Object.fromEntries(Object.entries(body).filter(([k]) => !SERVER_OWNED.includes(k)));
}

/**
 * The redirect URIs and allowed origins a registration request declares, shaped as metadata for
 * clientAllowsOrigin (only its well-formed strings: the request may be refused for the rest).
 */
function declaredOrigins(body: unknown): OriginMembers | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const strings = (value: unknown) => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && URL.canParse(v)) : []);
  const { redirect_uris, allowed_origins } = body as Record<string, unknown>;
  return { redirect_uris: strings(redirect_uris), allowed_origins: strings(allowed_origins) };
}

/** RFC 7591 §3.2.1 / RFC 7592 §3: the client information response. */
function clientInformation(client: Client, registrationClientUri: string, extra: { client_secret?: string; registration_access_token?: string } = {}) {
  return {
    client_id: client.clientId,
    ...(extra.client_secret ? { client_secret: extra.client_secret } : {}),
    client_id_issued_at: Math.floor(client.createdAt.getTime() / 1000),
    // RFC 7591 §3.2.1: 0 = the secret does not expire; required when a secret was issued.
    ...(client.secrets.length > 0 ? { client_secret_expires_at: 0 } : {}),
    ...(extra.registration_access_token ? { registration_access_token: extra.registration_access_token } : {}),
    registration_client_uri: registrationClientUri,
    ...client.metadata,
  };
}

/**
 * Dynamic Client Registration (RFC 7591) at POST /register, protected by an initial access
 * token (INITIAL_ACCESS_TOKEN), and client configuration (RFC 7592) at /register/:client_id
 * with the client's registration access token. Registered only when INITIAL_ACCESS_TOKEN is set.
 */
export function registrationRoutes(service: Services, config: Config, metrics: Metrics, clock: Clock): FastifyPluginAsync {
  const initialAccessTokenValid = credentialChecker(config.initialAccessTokens);
  const clientUri = (clientId: string) => `${service.endpoints.registration}/${encodeURIComponent(clientId)}`;
  const fields = requestAuditFields;
  // What a self-registered client may say about itself, beyond what any client may.
  const policy = config.registrationAllowForeignUris ? undefined : foreignLinkProblem;

  // One limit over /register and /register/:client_id per IP, and one per client for RFC 7592,
  // counted once the client's registration access token has matched: requests naming a client
  // with a wrong token spend their address's allowance, never that client's.
  const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics });
  const perClient = limiter.client('registration', config.registrationRateLimitPerClient, clock);

  /** RFC 7592 §2: the registration access token of this client, else 401 (also for an unknown client). */
  const authorise = async (req: FastifyRequest): Promise<string> => {
    const clientId = (req.params as { client_id: string }).client_id;
    const token = bearerToken(req.headers.authorization);
    if (!token || !(await service.registry.registrationAccessTokenMatches(clientId, token))) {
      throw invalidToken('latchkey-registration', 'a valid registration access token for this client is required');
    }
    perClient.admit(clientId);
    return clientId;
  };

  return async (app) => {
    app.addHook('preHandler', limiter.endpoint('registration', { perIp: config.registrationRateLimitPerIp }));

    // CORS (RFC 9700 §2.6): a registration is readable from the origins the registrant declares
    // in it (the client does not exist yet); RFC 7592's answers from the named client's origins.
    const registerCors = allowCors(app, ['/register'], {
      methods: ['POST'], headers: ['authorization', 'content-type'], expose: ['WWW-Authenticate', 'Retry-After'],
      origins: (req) => declaredOrigins(req.body),
    });
    const configurationCors = allowCors(app, ['/register/:client_id'], {
      methods: ['GET', 'PUT', 'DELETE'], headers: ['authorization', 'content-type'], expose: ['WWW-Authenticate', 'Retry-After'],
      origins: (req) => liveClientMetadata(service.clients, (req.params as { client_id?: unknown }).client_id),
    });

    app.post('/register', { onSend: registerCors }, async (req, reply) => {
      // RFC 7591 §3: the initial access token, as a Bearer token.
      if (!initialAccessTokenValid(bearerToken(req.headers.authorization))) {
        throw invalidToken('latchkey-registration', 'a valid initial access token is required');
      }
      const created = await service.registry.create(withDefaultScope(metadataOf(req.body), config.registrationDefaultScope), { source: 'registration', registrationAccessToken: true, policy, fields: fields(req) });
      return reply.code(201).send(clientInformation(created.client, clientUri(created.client.clientId), {
        ...(created.clientSecret ? { client_secret: created.clientSecret } : {}),
        ...(created.registrationAccessToken ? { registration_access_token: created.registrationAccessToken } : {}),
      }));
    });

    app.get('/register/:client_id', { onSend: configurationCors }, async (req) => {
      const clientId = await authorise(req);
      return clientInformation(await service.registry.get(clientId), clientUri(clientId));
    });

    app.put('/register/:client_id', { onSend: configurationCors }, async (req) => {
      const clientId = await authorise(req);
      const body = req.body as Record<string, unknown> | null;
      // RFC 7592 §2.2: the body carries the client_id, which must be this client's; a
      // client_secret, if sent, must be the current one.
      if (!body || typeof body !== 'object' || body.client_id !== clientId) throw new InvalidRequest('client_id in the body must match the client being updated (RFC 7592 §2.2)');
      if (body.client_secret !== undefined) {
        const current = await service.registry.get(clientId);
        if (typeof body.client_secret !== 'string' || !current.secrets.some((s) => hashMatches(body.client_secret as string, s.hash))) {
          throw new InvalidRequest('client_secret does not match the current secret (RFC 7592 §2.2)');
        }
      }
      const updated = await service.registry.update(clientId, withDefaultScope(metadataOf(body), config.registrationDefaultScope), { source: 'registration', policy, fields: fields(req) });
      return clientInformation(updated.client, clientUri(clientId), updated.clientSecret ? { client_secret: updated.clientSecret } : {});
    });

    app.delete('/register/:client_id', { onSend: configurationCors }, async (req, reply) => {
      const clientId = await authorise(req);
      await service.registry.delete(clientId, { source: 'registration', fields: fields(req) });
      return reply.code(204).send();
    });
  };
}
