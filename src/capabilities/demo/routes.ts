import { createHash, randomBytes } from 'node:crypto';
import cookie from '@fastify/cookie';
import type { FastifyPluginAsync } from 'fastify';
import { decodeJwt } from 'jose';
import type { Config } from '../../server/context.js';
import { DEMO_CLIENT_ID } from './demo-data.js';
import { errorPage, tryResultPage } from '../../platform/ui/pages.js';
import { sendHtml } from '../../server/http/html.js';

const COOKIE = 'latchkey_try';


/**
 * The try-it page: a tiny relying party for the demo client, inside the server, that runs the
 * whole authorization code flow the way an app would — PKCE, state and nonce kept in a cookie,
 * the callback checked (state, iss), the code redeemed at /token and /userinfo called, both
 * through the server's own HTTP routes (so they are counted and audited like any client's).
 */
export function tryRoutes(config: Config): FastifyPluginAsync {
  const secure = config.issuer.startsWith('https:');
  const redirectUri = `${config.issuer}/try/callback`;
  return async (app) => {
    await app.register(cookie);

    app.get('/try', async (_req, reply) => {
      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(16).toString('base64url');
      const nonce = randomBytes(16).toString('base64url');
      reply.setCookie(COOKIE, `${state}.${nonce}.${verifier}`, { path: '/try', httpOnly: true, sameSite: 'lax', secure, maxAge: 1800 });
      const query = new URLSearchParams({
        response_type: 'code', client_id: DEMO_CLIENT_ID, redirect_uri: redirectUri, scope: 'openid profile email',
        state, nonce, code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
      });
      return reply.code(303).header('location', `/authorize?${query}`).send();
    });

    app.get('/try/callback', async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const [state, nonce, verifier] = (req.cookies[COOKIE] ?? '').split('.');
      reply.clearCookie(COOKIE, { path: '/try' });
      if (typeof q.error === 'string') return sendHtml(reply, 400, errorPage('The demo app was refused', `${q.error}: ${String(q.error_description ?? '')}`));
      if (!state || q.state !== state || q.iss !== config.issuer || typeof q.code !== 'string') {
        return sendHtml(reply, 400, errorPage('The demo app could not continue', 'The response did not match the request it sent (state or iss). Start again at /try.'));
      }
      const token = await app.inject({
        method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'authorization_code', client_id: DEMO_CLIENT_ID, code: q.code, redirect_uri: redirectUri, code_verifier: verifier! }).toString(),
      });
      const tokens = token.json() as { access_token?: string; id_token?: string; scope?: string; expires_in?: number; error?: string };
      if (token.statusCode !== 200 || !tokens.access_token || !tokens.id_token) {
        return sendHtml(reply, 400, errorPage('The demo app could not redeem the code', tokens.error ?? 'unexpected answer'));
      }
      const idToken = decodeJwt(tokens.id_token);
      if (idToken.nonce !== nonce) return sendHtml(reply, 400, errorPage('The demo app could not continue', 'The ID token nonce did not match.'));
      const info = await app.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${tokens.access_token}` } });
      return sendHtml(reply, 200, tryResultPage({ idToken: idToken as Record<string, unknown>, userInfo: info.json() as Record<string, unknown>, scope: tokens.scope ?? '', expiresIn: tokens.expires_in ?? 0 }));
    });
  };
}
