import cookie from '@fastify/cookie';
import { Counter } from 'prom-client';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequest } from '../../oauth/errors.js';
import type { FormBody } from '../../oauth/params.js';
import { readIdTokenHint } from '../../oauth/tokens.js';
import { errorPage, logoutPage, signedOutPage } from '../../platform/ui/pages.js';
import type { CapabilityContext } from '../../server/context.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { formField } from '../../server/http/forms.js';
import { sendHtml } from '../../server/http/html.js';
import { formActionSource, htmlCsp } from '../../server/http/security-headers.js';
import { postLogoutRedirectUrl, redirectsAutomatically, validateEndSessionRequest, type EndSessionDeps, type EndSessionRequest } from './end-session.js';

/**
 * /logout: the end_session_endpoint of OpenID Connect RP-Initiated Logout 1.0, and the account
 * page's sign-out.
 */
export function logoutRoutes(context: CapabilityContext): FastifyPluginAsync {
  const { config, audit, services } = context;
  const { sessionEnd, users } = services;
  const endSessionDeps: EndSessionDeps = {
    clients: services.clients,
    readIdTokenHint: (token) => readIdTokenHint({ keys: context.keys, issuer: config.issuer }, token),
  };
  const { cookies } = services.browserSessions;
  const issuerHost = new URL(config.issuer).host;
  const logouts = new Counter({
    name: 'latchkey_logouts_total',
    help: 'Sign-out requests at /logout by outcome: signed_out, stayed (the person chose to stay signed in), not_signed_in (no session to end), invalid_request (refused; nothing done).',
    labelNames: ['outcome'],
    registers: [context.metrics.registry],
  });

  return async (app) => {
    // Cookies are parsed for these pages only, not on every token request.
    await app.register(cookie);

    /**
     * /logout, GET or POST (RP-Initiated Logout 1.0 §2: both). The request is validated first;
     * a bad one gets an error page and changes nothing. With a session, the person is asked
     * (§2: the OP SHOULD ask; a cross-site GET must not sign anyone out), and the answer comes
     * back as a POST of this page's form, CSRF-checked, carrying the same parameters, which are
     * validated again. Without a session there is nothing to ask. Either way the browser goes
     * back to the client's post_logout_redirect_uri when the request named a valid one.
     */
    const logout = async (req: FastifyRequest, reply: FastifyReply, params: FormBody, form: FormBody | undefined) => {
      let request: EndSessionRequest;
      try {
        request = await validateEndSessionRequest(params, endSessionDeps);
      } catch (err) {
        if (!(err instanceof InvalidRequest)) throw err;
        logouts.inc({ outcome: 'invalid_request' });
        return sendHtml(reply, 400, errorPage('Sign out failed', `The sign-out request is not valid: ${err.description}.`));
      }
      /** `sessionSid`: the browser's session before it ended, if it had one (redirectsAutomatically). */
      const done = (outcome: 'signed_out' | 'stayed' | 'not_signed_in', sessionSid: string | undefined) => {
        logouts.inc({ outcome });
        const { redirect, client } = request;
        if (redirect && redirectsAutomatically(request, sessionSid)) return reply.code(303).header('location', postLogoutRedirectUrl(redirect)).send();
        if (outcome === 'stayed') return reply.code(303).header('location', '/').send();
        return sendHtml(reply, 200, signedOutPage(redirect && client
          ? { href: postLogoutRedirectUrl(redirect), clientName: client.metadata.client_name ?? client.clientId, issuerHost }
          : undefined));
      };

      // The answer to this page's question: only from this page (CSRF), else it is a new request.
      if (form && formField(form, 'csrf') !== undefined) {
        if (!cookies.csrfValid(req, formField(form, 'csrf'))) {
          return sendHtml(reply, 403, errorPage('Sign out failed', 'The form expired. Please try again.'));
        }
        if (formField(form, 'decision') === 'stay') return done('stayed', (await services.browserSessions.current(req))?.sid);
        const ended = await services.browserSessions.end(req);
        if (ended) {
          audit.record('logout', { sub: ended.user_id, sid: ended.sid, client_id: request.client?.clientId, ...requestAuditFields(req) });
          void sessionEnd.sessionEnded(ended, requestAuditFields(req));
        }
        cookies.clearSession(reply);
        // As at sign-in: no form token of the ended session carries over.
        cookies.renewCsrfToken(reply);
        return done(ended ? 'signed_out' : 'not_signed_in', ended?.sid);
      }

      const session = await services.browserSessions.current(req);
      if (!session) return done('not_signed_in', undefined);
      const user = await users.findById(session.user_id);
      // The form's answer may end in the redirect: form-action names its origin then, and only then.
      const formAction = request.redirect && redirectsAutomatically(request, session.sid) ? ["'self'", formActionSource(request.redirect.uri)] : ["'self'"];
      reply.header('content-security-policy', htmlCsp({ formAction }));
      return sendHtml(reply, 200, logoutPage({
        csrf: cookies.csrfToken(req, reply),
        username: user?.username,
        clientName: request.client ? request.client.metadata.client_name ?? request.client.clientId : undefined,
        hidden: request.params,
      }));
    };

    app.get('/logout', async (req, reply) => logout(req, reply, req.query as FormBody, undefined));
    app.post('/logout', async (req, reply) => {
      const body = (req.body && typeof req.body === 'object' ? req.body : {}) as FormBody;
      return logout(req, reply, body, body);
    });
  };
}
