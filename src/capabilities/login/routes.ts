import cookie from '@fastify/cookie';
import { Counter } from 'prom-client';
import type { FastifyPluginAsync } from 'fastify';
import type { CapabilityContext } from '../../server/context.js';
import { KnownAddressRepository } from '../../users/known-address-store.js';
import { KnownDeviceCookies } from '../../users/known-device.js';
import { LoginThrottleRepository } from '../../users/sign-in-throttle-store.js';
import { accountPage, loginPage, type LoginPageModel } from '../../platform/ui/pages.js';
import { MAX_LOGIN_LENGTH, signIn } from '../../users/sign-in.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { htmlCsp } from '../../server/http/security-headers.js';
import { addressKey } from '../../platform/fixed-window.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { sendHtml } from '../../server/http/html.js';
import { formField } from '../../server/http/forms.js';
import { safeReturnPath } from '../../server/http/return-path.js';
import { satisfies } from '../../oauth/assurance.js';

const text = (v: unknown): string => (typeof v === 'string' ? v : '');


/**
 * The first-party sign-in pages: /login and the account page at / (whose sign-out form posts
 * to /logout, src/capabilities/logout/routes.ts).
 */
export function loginRoutes(context: CapabilityContext): FastifyPluginAsync {
  const { config, store, clock, audit, services } = context;
  const { hasher, sessionEnd } = services;
  // CSP form-action sources for a form returning to this path (a pending authorization may redirect to its client).
  const formActionsFor = (returnTo: string) => context.formActionsAfterSignIn(returnTo);
  const { cookies, sessions } = services.browserSessions;
  const users = services.users;
  const throttle = new LoginThrottleRepository(store.db);
  const knownAddresses = new KnownAddressRepository(store.db);
  const knownDevices = new KnownDeviceCookies(context.keyEncryptionSecrets, config.loginKnownTtl);
  // Sign-in outcomes (the SLI of the login form); refusals by the request-rate limit are
  // latchkey_rate_limited_total{endpoint="login"}, CSRF failures are not sign-in attempts.
  const logins = new Counter({
    name: 'latchkey_logins_total',
    help: 'Password sign-in attempts by outcome: success, failure (any reason) or throttled (blocked after repeated failures).',
    labelNames: ['outcome'],
    registers: [context.metrics.registry],
  });

  /** The sign-in page's CSP and what a sign-in factor adds to it (read per request: the factors register after this capability). */
  async function loginPageParts(csrf: string, returnTo: string): Promise<{ csp: string; page: Pick<LoginPageModel, 'addition' | 'passkeyAutofill'> }> {
    const addition = context.signInFactors().loginPageAddition?.({ csrf, returnTo });
    const csp = htmlCsp({ formAction: await formActionsFor(returnTo), ...(addition ? { scriptHashes: addition.scriptHashes } : {}) });
    return { csp, page: addition ? { addition: addition.html, passkeyAutofill: true } : {} };
  }

  return async (app) => {
    // Cookies are parsed for these pages only, not on every token request.
    await app.register(cookie);

    app.get('/login', async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const returnTo = safeReturnPath(query.return_to);
      // OpenID Connect Core §3.1.2.1 login_hint, passed on by /authorize: only pre-fills the field.
      const hint = typeof query.login_hint === 'string' ? query.login_hint.slice(0, 254) : undefined;
      const csrf = cookies.csrfToken(req, reply);
      const parts = await loginPageParts(csrf, returnTo);
      reply.header('content-security-policy', parts.csp);
      return sendHtml(reply, 200, loginPage({ csrf, returnTo, ...(hint ? { login: hint } : {}), ...parts.page }));
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
        key: (req) => { const login = text(formField(req.body, 'login')).trim().toLowerCase().slice(0, MAX_LOGIN_LENGTH); return login ? `${login}|${addressKey(req.ip)}` : undefined; },
      },
      onLimited: (req, reply, retryAfterSeconds) => {
        reply.header('retry-after', String(retryAfterSeconds));
        const login = text(formField(req.body, 'login'));
        sendHtml(reply, 429, loginPage({ csrf: cookies.csrfToken(req, reply), returnTo: safeReturnPath(formField(req.body, 'return_to')), login, error: 'throttled', retryAfterSeconds }));
        return undefined;
      },
    });

    app.post('/login', { preHandler: limit }, async (req, reply) => {
      const body = req.body;
      const returnTo = safeReturnPath(formField(body, 'return_to'));
      const login = text(formField(body, 'login'));
      const csrf = cookies.csrfToken(req, reply);
      const parts = await loginPageParts(csrf, returnTo);
      reply.header('content-security-policy', parts.csp);
      if (!cookies.csrfValid(req, formField(body, 'csrf'))) {
        return sendHtml(reply, 403, loginPage({ csrf, returnTo, login, error: 'csrf', ...parts.page }));
      }
      const result = await signIn({
        login, password: text(formField(body, 'password')), ip: req.ip,
        userAgent: req.headers['user-agent'], requestId: req.id, deviceCookie: cookies.device(req),
      }, {
        users, sessions, throttle, knownAddresses, knownDevices, hasher, clock, audit,
        sessionIdleTtl: config.sessionIdleTtl, sessionAbsoluteTtl: config.sessionAbsoluteTtl,
        requiredAcr: (user, now) => context.signInFactors().requiredAcr(user, now),
      });
      logins.inc({ outcome: result.kind === 'signed_in' ? 'success' : result.kind === 'rejected' ? 'failure' : 'throttled' });
      if (result.kind === 'throttled') {
        reply.header('retry-after', String(result.retryAfterSeconds));
        return sendHtml(reply, 429, loginPage({ csrf, returnTo, login, error: 'throttled', retryAfterSeconds: result.retryAfterSeconds, ...parts.page }));
      }
      if (result.kind === 'rejected') {
        return sendHtml(reply, 401, loginPage({ csrf, returnTo, login, error: 'rejected', ...parts.page }));
      }
      // Replace any previous session of this browser (no session fixation).
      const replaced = await services.browserSessions.end(req);
      if (replaced) void sessionEnd.sessionEnded(replaced, requestAuditFields(req));
      cookies.setSession(reply, result.sessionId, config.sessionAbsoluteTtl);
      // The CSRF token changes with the session (OWASP: regenerate on a privilege change).
      cookies.renewCsrfToken(reply);
      cookies.setDevice(reply, result.deviceCookie, knownDevices.ttlSeconds);
      // The account must prove more (a second factor, or enrol one): the session is not signed in yet.
      const next = satisfies(result.session.acr, result.session.required_acr) ? returnTo : context.signInFactors().stepUpPath(returnTo);
      return reply.code(303).header('location', next).send();
    });

    app.get('/', async (req, reply) => {
      const session = await services.browserSessions.current(req);
      const user = session ? await users.findById(session.user_id) : undefined;
      if (!session || !user) return reply.code(303).header('location', '/login').send();
      return sendHtml(reply, 200, accountPage({ username: user.username, csrf: cookies.csrfToken(req, reply) }));
    });
  };
}
