import cookie from '@fastify/cookie';
import { Counter } from 'prom-client';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { CapabilityContext } from '../../server/context.js';
import { postLogoutRedirectUrl, validateEndSessionRequest, type EndSessionDeps, type EndSessionRequest } from '../logout/end-session.js';
import { InvalidRequest } from '../../oauth/errors.js';
import type { FormBody } from '../../oauth/params.js';
import { sha256 } from '../../platform/crypto.js';
import { readIdTokenHint } from '../../oauth/tokens.js';
import { LoginThrottleRepository } from '../../users/sign-in-throttle-store.js';
import { SessionRepository } from '../../users/session-store.js';
import { accountPage, errorPage, loginPage, logoutPage, signedOutPage } from '../../platform/ui/pages.js';
import { MAX_LOGIN_LENGTH, signIn } from '../../users/sign-in.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { BrowserCookies } from '../../server/http/browser-session.js';
import { formActionSource, htmlCsp } from '../../server/http/security-headers.js';
import { addressKey } from '../../platform/fixed-window.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';

/**
 * Where a browser may be sent after signing in: a path on this server only. Anything else
 * (another origin, `//host`, `/\host`, a scheme) falls back to `/`, so the form is no open redirect.
 */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) return '/';
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  if (/[\u0000-\u001f\\]/.test(value)) return '/';
  return value;
}

const field = (body: unknown, name: string): unknown => (body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

function sendHtml(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

/**
 * The first-party sign-in pages: /login, the account page at /, and /logout — the
 * end_session_endpoint of OpenID Connect RP-Initiated Logout 1.0 as well as the account page's
 * sign-out.
 */
export function loginRoutes(context: CapabilityContext): FastifyPluginAsync {
  const { config, store, clock, audit, services } = context;
  const { hasher, sessionEnd } = services;
  // CSP form-action sources for a form returning to this path (a pending authorization may redirect to its client).
  const formActionsFor = (returnTo: string) => context.formActionsAfterSignIn(returnTo);
  const endSessionDeps: EndSessionDeps = {
    clients: services.clients,
    readIdTokenHint: (token) => readIdTokenHint({ keys: context.keys, issuer: config.issuer }, token),
  };
  const cookies = new BrowserCookies(config.issuer);
  const users = services.users;
  const sessions = new SessionRepository(store.db);
  const throttle = new LoginThrottleRepository(store.db);
  // Sign-in outcomes (the SLI of the login form); refusals by the request-rate limit are
  // latchkey_rate_limited_total{endpoint="login"}, CSRF failures are not sign-in attempts.
  const logins = new Counter({
    name: 'latchkey_logins_total',
    help: 'Password sign-in attempts by outcome: success, failure (any reason) or throttled (blocked after repeated failures).',
    labelNames: ['outcome'],
    registers: [context.metrics.registry],
  });
  const logouts = new Counter({
    name: 'latchkey_logouts_total',
    help: 'Sign-out requests at /logout by outcome: signed_out, stayed (the person chose to stay signed in), not_signed_in (no session to end), invalid_request (refused; nothing done).',
    labelNames: ['outcome'],
    registers: [context.metrics.registry],
  });
  const currentSession = (req: FastifyRequest) => cookies.session(req, sessions, config.sessionIdleTtl, clock.now());

  return async (app) => {
    // Cookies are parsed for these pages only, not on every token request.
    await app.register(cookie);

    app.get('/login', async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const returnTo = safeReturnPath(query.return_to);
      // OpenID Connect Core §3.1.2.1 login_hint, passed on by /authorize: only pre-fills the field.
      const hint = typeof query.login_hint === 'string' ? query.login_hint.slice(0, 254) : undefined;
      reply.header('content-security-policy', htmlCsp({ formAction: await formActionsFor(returnTo) }));
      return sendHtml(reply, 200, loginPage({ csrf: cookies.csrfToken(req, reply), returnTo, ...(hint ? { login: hint } : {}) }));
    });

    // Per IP and per (login name, IP), before any argon2 work; answered with the login page.
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: context.metrics });
    const limit = limiter.endpoint('login', {
      perIp: config.loginRateLimitPerIp,
      // Keyed by login name *and* address: a name counted from any address would let anyone
      // lock its owner out with a trickle of requests (the database throttle per account, with
      // its growing delay, is what stops distributed guessing).
      perKey: {
        name: 'login', max: config.loginRateLimitPerLogin,
        key: (req) => { const login = text(field(req.body, 'login')).trim().toLowerCase().slice(0, MAX_LOGIN_LENGTH); return login ? `${login}|${addressKey(req.ip)}` : undefined; },
      },
      onLimited: (req, reply, retryAfterSeconds) => {
        reply.header('retry-after', String(retryAfterSeconds));
        const login = text(field(req.body, 'login'));
        sendHtml(reply, 429, loginPage({ csrf: cookies.csrfToken(req, reply), returnTo: safeReturnPath(field(req.body, 'return_to')), login, error: 'throttled', retryAfterSeconds }));
        return undefined;
      },
    });

    app.post('/login', { preHandler: limit }, async (req, reply) => {
      const body = req.body;
      const returnTo = safeReturnPath(field(body, 'return_to'));
      const login = text(field(body, 'login'));
      const csrf = cookies.csrfToken(req, reply);
      reply.header('content-security-policy', htmlCsp({ formAction: await formActionsFor(returnTo) }));
      if (!cookies.csrfValid(req, field(body, 'csrf'))) {
        return sendHtml(reply, 403, loginPage({ csrf, returnTo, login, error: 'csrf' }));
      }
      const result = await signIn({
        login, password: text(field(body, 'password')), ip: req.ip,
        userAgent: req.headers['user-agent'], requestId: req.id,
      }, { users, sessions, throttle, hasher, clock, audit, sessionIdleTtl: config.sessionIdleTtl, sessionAbsoluteTtl: config.sessionAbsoluteTtl });
      logins.inc({ outcome: result.kind === 'signed_in' ? 'success' : result.kind === 'rejected' ? 'failure' : 'throttled' });
      if (result.kind === 'throttled') {
        reply.header('retry-after', String(result.retryAfterSeconds));
        return sendHtml(reply, 429, loginPage({ csrf, returnTo, login, error: 'throttled', retryAfterSeconds: result.retryAfterSeconds }));
      }
      if (result.kind === 'rejected') {
        return sendHtml(reply, 401, loginPage({ csrf, returnTo, login, error: 'rejected' }));
      }
      // Replace any previous session of this browser (no session fixation).
      const previous = cookies.sessionId(req);
      const replaced = previous ? await sessions.end(sha256(previous), clock.now()) : undefined;
      if (replaced) void sessionEnd.sessionEnded(replaced, requestAuditFields(req));
      cookies.setSession(reply, result.sessionId, config.sessionAbsoluteTtl);
      return reply.code(303).header('location', returnTo).send();
    });

    app.get('/', async (req, reply) => {
      const session = await currentSession(req);
      const user = session ? await users.findById(session.user_id) : undefined;
      if (!session || !user) return reply.code(303).header('location', '/login').send();
      return sendHtml(reply, 200, accountPage({ username: user.username, csrf: cookies.csrfToken(req, reply) }));
    });

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
      const done = (outcome: 'signed_out' | 'stayed' | 'not_signed_in') => {
        logouts.inc({ outcome });
        if (request.redirect) return reply.code(303).header('location', postLogoutRedirectUrl(request.redirect)).send();
        if (outcome === 'stayed') return reply.code(303).header('location', '/').send();
        return sendHtml(reply, 200, signedOutPage());
      };

      // The answer to this page's question: only from this page (CSRF), else it is a new request.
      if (form && field(form, 'csrf') !== undefined) {
        if (!cookies.csrfValid(req, field(form, 'csrf'))) {
          return sendHtml(reply, 403, errorPage('Sign out failed', 'The form expired. Please try again.'));
        }
        if (field(form, 'decision') === 'stay') return done('stayed');
        const id = cookies.sessionId(req);
        const ended = id ? await sessions.end(sha256(id), clock.now()) : undefined;
        if (ended) {
          audit.record('logout', { sub: ended.user_id, sid: ended.sid, client_id: request.client?.clientId, ...requestAuditFields(req) });
          void sessionEnd.sessionEnded(ended, requestAuditFields(req));
        }
        cookies.clearSession(reply);
        return done(ended ? 'signed_out' : 'not_signed_in');
      }

      const session = await currentSession(req);
      if (!session) return done('not_signed_in');
      const user = await users.findById(session.user_id);
      reply.header('content-security-policy', htmlCsp({ formAction: request.redirect ? ["'self'", formActionSource(request.redirect.uri)] : ["'self'"] }));
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
