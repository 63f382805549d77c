import cookie from '@fastify/cookie';
import { randomUUID } from 'node:crypto';
import { Counter } from 'prom-client';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { CapabilityContext } from '../../server/context.js';
import { reportedAcr, requestedAcrValues, satisfies } from '../../oauth/assurance.js';
import type { Client } from '../../oauth/client.js';
import { ConsentRepository } from '../../oauth/consent-store.js';
import { ClientAuthenticationFailed } from '../../oauth/client-auth/authenticate.js';
import { InvalidRequest } from '../../oauth/errors.js';
import { formBody } from '../../oauth/params.js';
import { describeScopes } from '../../oauth/scope-descriptions.js';
import { addressKey } from '../../platform/fixed-window.js';
import { errorPage, FORM_EXPIRED_PAGE } from '../../platform/ui/pages.js';
import { issuesIdToken } from '../../oauth/tokens.js';
import { SessionClientRepository } from '../../users/session-clients-store.js';
import { LoginThrottleRepository } from '../../users/sign-in-throttle-store.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { FORM, formField, isForm } from '../../server/http/forms.js';
import { sendHtml } from '../../server/http/html.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { authorizeDevice, type DeviceAuthorizationDeps } from './device-authorization.js';
import type { DeviceAuthorizationRepository } from './device-store.js';
import { deviceCodePage, deviceConsentPage, deviceDonePage } from './pages.js';
import { displayUserCode, normaliseUserCode } from './user-code.js';

/** Wrong user codes are counted for 15 minutes (RFC 8628 §5.1); DEVICE_USER_CODE_ATTEMPTS of them block for as long. */
const WRONG_CODE_WINDOW = 900;

/**
 * The device flow's endpoints: POST /device_authorization (the device asks) and the
 * verification pages at /device, where a signed-in person enters the code and allows or denies.
 */
export function deviceRoutes(context: CapabilityContext, devices: DeviceAuthorizationRepository, outcomes: Counter<'outcome'>): FastifyPluginAsync {
  const { config, store, clock, audit, services } = context;
  const { browserSessions, users } = services;
  const { cookies } = browserSessions;
  const throttle = new LoginThrottleRepository(store.db);
  const sessionClients = new SessionClientRepository(store.db);
  const consents = new ConsentRepository(store.db);
  const deps: DeviceAuthorizationDeps = {
    ...services.authDeps, devices, clock, issuer: config.issuer, verificationUri: `${config.issuer}/device`,
    ttlSeconds: config.deviceCodeTtl, intervalSeconds: config.deviceCodeInterval,
  };

  const devicePath = (userCode?: string) => (userCode ? `/device?${new URLSearchParams({ user_code: userCode })}` : '/device');
  const signIn = (reply: FastifyReply, userCode?: string) =>
    reply.code(303).header('location', `/login?${new URLSearchParams({ return_to: devicePath(userCode) })}`).send();

  /**
   * The levels a client asks of every sign-in (default_acr_values), read as /authorize reads them
   * (src/oauth/assurance.ts): the advertised ones, weakest first — the first is what must be reached.
   */
  const askedAcr = (client: Client) => requestedAcrValues(undefined, undefined, client.metadata.default_acr_values);

  /** The keys code entries count against: this address, this session and this account (RFC 8628 §5.1). */
  const wrongCodeKeys = (req: FastifyRequest, session: { sid: string; user_id: string }) =>
    [`device:ip:${addressKey(req.ip)}`, `device:session:${session.sid}`, `device:user:${session.user_id}`];
  /**
   * Takes one code entry for each key, before the code is looked up, and answers the seconds to
   * wait when one of them is spent: every entry counts, right or wrong — a guesser can make right
   * codes of their own at will, so a success forgives nothing — and entries sent in parallel
   * cannot all pass a check made before any of them counted. DEVICE_USER_CODE_ATTEMPTS entries
   * per 15 minutes, then 15 minutes' wait.
   */
  const ENTRY_RULE = { windowSeconds: WRONG_CODE_WINDOW, free: config.deviceUserCodeAttempts, maxDelaySeconds: WRONG_CODE_WINDOW, fixed: true };
  async function takeEntry(keys: string[]): Promise<number | undefined> {
    const now = clock.now();
    for (const key of keys) {
      if (await throttle.takeAttempt(key, now, ENTRY_RULE) !== undefined) continue;
      return (await throttle.secondsBlocked([key], now)) ?? 1;
    }
    return undefined;
  }
  const wrongCode = (req: FastifyRequest, userId: string) => audit.record('device.code_rejected', { sub: userId, ...requestAuditFields(req) });
  return async (app) => {
    await app.register(cookie);
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: context.metrics });
    const limit = limiter.endpoint('device_authorization', { perIp: config.deviceAuthorizationRateLimitPerIp, authBackoff: services.authBackoff });

    // RFC 8628 §3.1: form-encoded, client authentication as at the token endpoint; JSON answers.
    app.post('/device_authorization', { preHandler: limit }, async (req, reply) => {
      reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      try {
        if (!isForm(req)) throw new InvalidRequest(`the request body must be ${FORM}`);
        const { client, scope, response } = await authorizeDevice({ authorization: req.headers.authorization, body: formBody(req.body) }, deps);
        outcomes.inc({ outcome: 'issued' });
        audit.record('device.authorization_issued', { client_id: client.clientId, scope, ...requestAuditFields(req) });
        return reply.send(response);
      } catch (err) {
        if (err instanceof ClientAuthenticationFailed) services.clientAuthFailed(err, { ...requestAuditFields(req), endpoint: 'device_authorization' });
        throw err;
      }
    });

    // RFC 8628 §3.3: the person signs in (SSO session, MFA policy), then enters or confirms the code.
    app.get('/device', async (req, reply) => {
      const typed = (req.query as Record<string, unknown>).user_code;
      // verification_uri_complete (§3.3.1) only fills the field in: the person still presses Continue, then Allow.
      const userCode = typeof typed === 'string' && typed.length <= 32 ? typed : undefined;
      const session = await browserSessions.current(req);
      if (!session) return signIn(reply, userCode);
      const user = await users.findById(session.user_id);
      if (!user) return signIn(reply, userCode);
      return sendHtml(reply, 200, deviceCodePage({ csrf: cookies.csrfToken(req, reply), username: user.username, ...(userCode ? { userCode } : {}) }));
    });

    app.post('/device', async (req, reply) => {
      const typed = formField(req.body, 'user_code');
      const shown = typeof typed === 'string' && typed.length <= 32 ? typed : '';
      if (!cookies.csrfValid(req, formField(req.body, 'csrf'))) return sendHtml(reply, 403, FORM_EXPIRED_PAGE);
      const session = await browserSessions.current(req);
      if (!session) return signIn(reply, shown);
      const user = await users.findById(session.user_id);
      if (!user) return signIn(reply, shown);
      const csrf = cookies.csrfToken(req, reply);
      const now = clock.now();
      const seconds = await takeEntry(wrongCodeKeys(req, session));
      if (seconds !== undefined) {
        audit.record('device.code_throttled', { sub: user.id, ...requestAuditFields(req) });
        reply.header('retry-after', String(seconds));
        return sendHtml(reply, 429, deviceCodePage({ csrf, username: user.username, userCode: shown, error: `Too many wrong codes. Try again in ${seconds} seconds.` }));
      }
      const code = normaliseUserCode(typed);
      const pending = code ? await devices.pendingByUserCode(code, now) : undefined;
      const client = pending ? await services.clients.get(pending.client_id) : undefined;
      if (!pending || !client || client.disabled) {
        wrongCode(req, user.id);
        return sendHtml(reply, 400, deviceCodePage({ csrf, username: user.username, userCode: shown, error: 'That code is not right, or has expired. Check it on your device.' }));
      }
      // A client may require a level of everyone signing in to it (default_acr_values): step up first.
      const required = askedAcr(client)[0];
      if (required && !satisfies(session.acr, required)) {
        return reply.code(303).header('location', context.signInFactors().stepUpPath(devicePath(displayUserCode(pending.user_code)), required)).send();
      }
      return sendHtml(reply, 200, deviceConsentPage({
        csrf, userCode: displayUserCode(pending.user_code), username: user.username, shownTo: user.id,
        clientName: client.metadata.client_name ?? client.clientId,
        scopes: describeScopes(pending.scope.split(' ').filter(Boolean), config.scopeDescriptions ?? {}),
      }));
    });

    app.post('/device/decision', async (req, reply) => {
      if (!cookies.csrfValid(req, formField(req.body, 'csrf'))) return sendHtml(reply, 403, FORM_EXPIRED_PAGE);
      const decision = formField(req.body, 'decision');
      const code = normaliseUserCode(formField(req.body, 'user_code'));
      if ((decision !== 'allow' && decision !== 'deny') || !code) return sendHtml(reply, 400, errorPage('Request not valid', 'Start again from the code your device shows.'));
      const session = await browserSessions.current(req);
      // The decision counts only from the person the page was shown to.
      if (!session || session.user_id !== formField(req.body, 'shown_to')) return signIn(reply, displayUserCode(code));
      const now = clock.now();
      const fields = requestAuditFields(req);
      const expired = () => sendHtml(reply, 400, errorPage('Code expired', 'This code has expired or was already used. Start again on your device.'));
      // The decision is a use of the code too: wrong codes count here as on the page before (§5.1).
      const seconds = await takeEntry(wrongCodeKeys(req, session));
      if (seconds !== undefined) return sendHtml(reply.header('retry-after', String(seconds)), 429, errorPage('Too many wrong codes', `Please wait ${seconds} seconds and try again.`));
      // What the code page checked holds when the decision is posted, however it is posted: a live
      // code, an enabled client (one disabled since the page was shown gets nothing), and for an
      // approval the client's default_acr_values (below them, step up first; denying needs none).
      const pending = await devices.pendingByUserCode(code, now);
      const client = pending ? await services.clients.get(pending.client_id) : undefined;
      if (!pending || !client || client.disabled) {
        wrongCode(req, session.user_id);
        return expired();
      }
      const asked = askedAcr(client);
      const required = asked[0];
      if (decision === 'allow' && required && !satisfies(session.acr, required)) {
        return reply.code(303).header('location', context.signInFactors().stepUpPath(devicePath(displayUserCode(code)), required)).send();
      }
      // The approval's acr: the level reached, as one of the values asked for when it meets one (Core §5.5.1.1), as after a code.
      const decided = decision === 'allow'
        ? await devices.decide(code, { approve: true, approval: { grantId: randomUUID(), userId: session.user_id, sid: session.sid, authTime: session.auth_time, amr: session.amr, acr: reportedAcr(session.acr, asked) } }, now)
        : await devices.decide(code, { approve: false, userId: session.user_id }, now);
      if (!decided) return expired();
      // The person allowed this app what it asked: it is one of their apps on the account page,
      // where they can take its access away again (the device's consent page is shown every time all the same).
      if (decision === 'allow') await consents.grant(session.user_id, decided.client_id, decided.scope.split(' ').filter(Boolean), now);
      // An ID token (with this session's sid) will follow: the client takes part in the session from
      // now on, and ending it notifies the client (Back-Channel Logout 1.0 §2), as after a code.
      if (decision === 'allow' && client.metadata.backchannel_logout_uri && issuesIdToken(decided.scope)) {
        await sessionClients.add(session.sid, decided.client_id, now);
      }
      outcomes.inc({ outcome: decision === 'allow' ? 'approved' : 'denied' });
      audit.record(decision === 'allow' ? 'device.approved' : 'device.denied', { client_id: decided.client_id, sub: session.user_id, scope: decided.scope, ...fields });
      return sendHtml(reply, 200, deviceDonePage({ allowed: decision === 'allow', clientName: client.metadata.client_name ?? decided.client_id }));
    });
  };
}
