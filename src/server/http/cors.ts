import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify';
import { namedClientId } from '../../oauth/client-auth/authenticate.js';
import { CLIENT_ID, type Client } from '../../oauth/client.js';
import { AccessDenied } from '../../oauth/errors.js';
import { clientAllowsOrigin, type ClientMetadata, type OriginMembers } from '../../oauth/client-metadata.js';

/**
 * CORS (the Fetch standard's CORS protocol, fetch.spec.whatwg.org/#http-cors-protocol) on the
 * endpoints a browser app calls directly, as RFC 9700 §2.6 allows: the metadata and JWK Set to
 * any origin, and the token, revocation, introspection, UserInfo and registration endpoints to
 * the origins of the client a request is for. Never on /authorize (RFC 9700 §2.6: MUST NOT) nor
 * any HTML page: a route gets CORS only by calling `allowCors`, so a page never has it. Never
 * `Access-Control-Allow-Credentials`: no endpoint here reads a cookie, and without it a script
 * never reads the answer to a request sent with credentials (#cors-protocol-and-credentials).
 *
 * Preflights carry no body, so they cannot say which client a request is for: a preflight is
 * answered for any origin with exactly this route's methods and headers. That lets the browser
 * send the request, which is no more than it may already do without asking (a form POST is a
 * CORS-safelisted request, #cors-safelisted-request-header); what CORS guards is reading the
 * answer, and the actual response names the origin in Access-Control-Allow-Origin only when the
 * request's client allows it (its redirect URIs' origins and `allowed_origins`).
 *
 * A request without Origin (every server-side client) costs one header lookup.
 */

/** Which origins may read an actual response: any (public documents), or those of the request's client. */
export type CorsOrigins =
  | 'any'
  | ((req: FastifyRequest) => Promise<OriginMembers | undefined> | OriginMembers | undefined);

export interface CorsRule {
  /** The methods the route serves (the preflight names exactly these). */
  methods: readonly string[];
  /** Request headers beyond the CORS-safelisted ones the route reads (lower case), e.g. `authorization`. */
  headers?: readonly string[];
  /** Response headers a script may read beyond the safelisted ones, e.g. `WWW-Authenticate`. */
  expose?: readonly string[];
  origins: CorsOrigins;
}

/** How long a browser may reuse a preflight answer, seconds (browsers cap it: Chromium at 7200). */
const PREFLIGHT_MAX_AGE = '600';

/** Appends a member to a Vary header, keeping what the route set (introspection varies on Accept). */
function addVary(reply: FastifyReply, name: string): void {
  const current = reply.getHeader('vary');
  reply.header('vary', current === undefined || current === '' ? name : `${String(current)}, ${name}`);
}

/**
 * Opts routes at `paths` into CORS: answers their preflights (OPTIONS) and returns the onSend
 * hook their other routes take (`{ onSend: allowCors(...) }`), which names the origin on the
 * answers the rule allows.
 */
export function allowCors(app: FastifyInstance, paths: readonly string[], rule: CorsRule): onSendHookHandler {
  const methods = new Set(rule.methods.map((m) => m.toUpperCase()));
  const headers = new Set((rule.headers ?? []).map((h) => h.toLowerCase()));
  const allowMethods = [...methods].join(', ');
  const allowHeaders = [...headers].join(', ');
  const expose = (rule.expose ?? []).join(', ');

  for (const path of paths) {
    app.options(path, (req, reply) => {
      // Fetch #cors-preflight-fetch: Origin and Access-Control-Request-Method; anything
      // else is not a preflight, and an OPTIONS request only learns what the route allows.
      const origin = req.headers.origin;
      const method = req.headers['access-control-request-method'];
      reply.header('allow', `${allowMethods}, OPTIONS`);
      if (origin === undefined || typeof method !== 'string') return reply.code(204).send();
      reply.header('vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
      const requested = (req.headers['access-control-request-headers'] ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
      // A request this route would not serve gets no CORS headers: the browser then refuses it.
      if (origin === 'null' || !methods.has(method) || requested.some((h) => !headers.has(h))) {
        throw new AccessDenied(`a CORS preflight for ${methods.has(method) ? 'a request header' : 'a method'} this endpoint does not serve, or from an opaque origin`);
      }
      reply.header('access-control-allow-origin', rule.origins === 'any' ? '*' : origin);
      reply.header('access-control-allow-methods', allowMethods);
      if (allowHeaders) reply.header('access-control-allow-headers', allowHeaders);
      reply.header('access-control-max-age', PREFLIGHT_MAX_AGE);
      return reply.code(204).send();
    });
  }

  const allow = (reply: FastifyReply, value: string) => {
    reply.header('access-control-allow-origin', value);
    if (expose) reply.header('access-control-expose-headers', expose);
  };
  const origins = rule.origins;
  if (origins === 'any') {
    return (req, reply, payload, done) => {
      // Public documents, the same for every origin: `*`, and Vary because a request without
      // Origin gets no CORS header.
      if (req.headers.origin !== undefined) {
        addVary(reply, 'Origin');
        allow(reply, '*');
      }
      done(null, payload);
    };
  }
  return (req, reply, payload, done) => {
    const origin = req.headers.origin;
    if (origin === undefined) {
      done(null, payload);
      return;
    }
    addVary(reply, 'Origin');
    Promise.resolve()
      .then(() => origins(req))
      .then((metadata) => {
        if (metadata && clientAllowsOrigin(metadata, origin)) allow(reply, origin);
      }, () => { /* no client to ask (the database is down): no CORS, the error goes out as it is */ })
      .then(() => done(null, payload));
  };
}

/** The metadata of a live client, by id (unknown, malformed or disabled: none). */
export async function liveClientMetadata(clients: { get(clientId: string): Promise<Client | undefined> }, clientId: unknown): Promise<ClientMetadata | undefined> {
  if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) return undefined;
  const client = await clients.get(clientId);
  return client && !client.disabled ? client.metadata : undefined;
}

/** CorsOrigins of the endpoints that authenticate clients (token, revocation, introspection): the client the request names. */
export function namedClientOrigins(clients: { get(clientId: string): Promise<Client | undefined> }): CorsOrigins {
  return (req) => liveClientMetadata(clients, namedClientId({ authorization: req.headers.authorization, body: req.body }));
}

/** The rule of the endpoints that authenticate clients with a form POST (RFC 6749 §2.3, RFC 7009, RFC 7662). */
export function clientAuthenticatingCors(clients: { get(clientId: string): Promise<Client | undefined> }): CorsRule {
  return { methods: ['POST'], headers: ['authorization'], expose: ['WWW-Authenticate', 'Retry-After'], origins: namedClientOrigins(clients) };
}
