import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { InvalidRequest, OAuthError } from '../../oauth/errors.js';
import type { CapabilityContext } from '../../server/context.js';
import { FORM, isForm } from '../../server/http/forms.js';
import { allowCors, liveClientMetadata } from '../../server/http/cors.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { userInfo, userInfoAccessToken, type UserInfoDeps } from './userinfo.js';

/** GET and POST /userinfo (OpenID Connect Core §5.3). */
export function userInfoRoutes(ctx: CapabilityContext): FastifyPluginAsync {
  const { config, services } = ctx;
  const metrics = services.metrics;
  const deps: UserInfoDeps = { ...services.accessTokens, clients: services.clients, users: services.users, isRevoked: services.isRevoked };
  return async (app) => {
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: ctx.metrics });
    // OpenID Connect Core §5.3: GET or POST, the access token as a bearer token (RFC 6750).
    const userInfoHandler = async (req: FastifyRequest, reply: FastifyReply) => {
      reply.header('Cache-Control', 'no-store');
      try {
        if (req.method === 'POST' && req.body !== undefined && !isForm(req)) throw new InvalidRequest(`the request body must be ${FORM}`);
        const form = req.method === 'POST' && req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
        const token = userInfoAccessToken(req.headers.authorization, form.access_token);
        const claims = await userInfo(token, deps);
        metrics.userInfo.inc({ outcome: 'success' });
        return reply.code(200).send(claims);
      } catch (err) {
        if (err instanceof OAuthError) {
          metrics.userInfo.inc({ outcome: err.error });
          // RFC 6750 §3: the Bearer challenge, with the error code when a token was presented.
          const presented = req.headers.authorization !== undefined || (req.method === 'POST' && req.body && typeof req.body === 'object' && 'access_token' in req.body);
          const code = presented ? `, error="${err.error}"` : '';
          err.headers['WWW-Authenticate'] = `Bearer realm="${config.issuer}"${code}`;
        }
        throw err;
      }
    };
    const userInfoLimit = limiter.endpoint('userinfo', { perIp: config.userinfoRateLimitPerIp });
    // OpenID Connect Core §5.3: UserInfo SHOULD support CORS. The answer is readable from the
    // origins of the client the access token was issued to, read from the token unverified (a
    // forged token's answer is invalid_token, and an expired one's lets the app refresh).
    const cors = allowCors(app, ['/userinfo'], {
      methods: ['GET', 'POST'], headers: ['authorization'], expose: ['WWW-Authenticate', 'Retry-After'],
      origins: (req) => {
        const presented = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
          ?? (req.method === 'POST' && req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>).access_token : undefined);
        if (typeof presented !== 'string') return undefined;
        let clientId: unknown;
        try { clientId = decodeJwt(presented).client_id; } catch { return undefined; }
        return liveClientMetadata(services.clients, clientId);
      },
    });
    app.get('/userinfo', { preHandler: userInfoLimit, onSend: cors }, userInfoHandler);
    app.post('/userinfo', { preHandler: userInfoLimit, onSend: cors }, userInfoHandler);
  };
}
