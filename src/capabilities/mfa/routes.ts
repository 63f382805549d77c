import cookie from '@fastify/cookie';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { CapabilityContext } from '../../server/context.js';
import { ACR, levelOf, satisfies, type FactorName } from '../../oauth/assurance.js';
import { ConsentRepository } from '../../oauth/consent-store.js';
import { addressKey } from '../../platform/fixed-window.js';
import { errorPage, FORM_EXPIRED_PAGE } from '../../platform/ui/pages.js';
import { delayAfter, ipThrottleKey, startSession, THROTTLE } from '../../users/sign-in.js';
import { LoginThrottleRepository } from '../../users/sign-in-throttle-store.js';
import type { SsoSession } from '../../users/session-store.js';
import type { User } from '../../users/user-store.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { formField } from '../../server/http/forms.js';
import { sendHtml } from '../../server/http/html.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { safeReturnPath } from '../../server/http/return-path.js';
import { htmlCsp } from '../../server/http/security-headers.js';
import { accountFactors, type AccountFactorCounts } from './account-factors.js';
import type { FactorAdministration } from './factor-administration.js';
import type { MfaMetrics } from './metrics.js';
import {
  accountSecurityPage, factorPage, recoveryCodesPage, recoveryOfferPage, recoveryUsedPage, totpRetryPage, totpSetupPage, type FactorPageModel,
} from './pages.js';
import { PASSKEY_SCRIPT_HASH } from './passkey-script.js';
import type { Passkeys, PasskeyFailure } from './passkeys.js';
import { mayEnrol, provedPasskey, provedSecondFactor, targetAcr, type MfaPolicy } from './policy.js';
import type { RecoveryCodes } from './recovery-codes.js';
import type { TotpFactors } from './totp.js';

export interface MfaParts {
  passkeys: Passkeys;
  totp: TotpFactors;
  recovery: RecoveryCodes;
  admin: FactorAdministration;
  policy: MfaPolicy;
  metrics: MfaMetrics;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The second-factor page (after the password, or a step-up), coming back to `returnTo`. */
export function factorPath(returnTo: string, acr?: string): string {
  return `/login/factor?${new URLSearchParams({ return_to: returnTo, ...(acr ? { acr } : {}) })}`;
}

const PASSKEY_MESSAGES: Record<PasskeyFailure, string> = {
  bad_challenge: 'The passkey request expired. Please try again.',
  unknown_credential: 'This passkey is not registered here (it may have been removed).',
  wrong_user: 'This passkey belongs to another account.',
  invalid: 'The passkey could not be verified.',
  user_verification_required: 'Your passkey must verify you (PIN or biometric) to sign in with it alone.',
  counter_regression: 'This passkey was refused: its signature counter went backwards, which is how a copied authenticator shows.',
};

/**
 * The multi-factor pages: usernameless passkey sign-in (/login/passkey), the second-factor and
 * step-up page (/login/factor), enrolment of passkeys, TOTP and recovery codes, and the account
 * page (/account) with the apps the person allowed.
 */
export function mfaRoutes(context: CapabilityContext, parts: MfaParts): FastifyPluginAsync {
  const { config, store, clock, audit, services } = context;
  const { browserSessions, users } = services;
  const { cookies } = browserSessions;
  const { passkeys, totp, recovery, admin, policy, metrics } = parts;
  const throttle = new LoginThrottleRepository(store.db);
  const consents = new ConsentRepository(store.db);

  /**
   * Second-factor attempts (OWASP ASVS 2.2.1, NIST SP 800-63B §5.2.2). Per account, each attempt
   * is taken before the code is checked and counts as a failure until it succeeds, so parallel
   * guesses cannot all get in before the first failure: 5 free, then the password's doubling
   * delay up to 15 minutes, forgotten after 15 quiet minutes; and at most 100 a day (then the
   * delay doubles up to a day), which no waiting between bursts gets around. Per address, real
   * failures count as for passwords (20 free). A success clears the account's counters.
   */
  const ACCOUNT_RULE = { windowSeconds: THROTTLE.windowSeconds, free: THROTTLE.freeFailures.account, maxDelaySeconds: THROTTLE.maxDelaySeconds };
  const DAILY_RULE = { windowSeconds: THROTTLE.secondFactorCap.windowSeconds, free: THROTTLE.secondFactorCap.attempts, maxDelaySeconds: THROTTLE.secondFactorCap.windowSeconds };
  const throttleKeys = (userId: string, ip: string) => ({ account: `mfa:account:${userId}`, daily: `mfa:account:${userId}|day`, ip: `mfa:ip:${addressKey(ip)}` });
  const wait = (key: string, now: Date) => throttle.secondsBlocked([key], now);
  const ipWait = (ip: string) => wait(throttleKeys('', ip).ip, clock.now());
  /** Takes an attempt; the seconds to wait when the account or address may not try now. */
  async function attempt(userId: string, ip: string): Promise<number | undefined> {
    const keys = throttleKeys(userId, ip);
    const now = clock.now();
    const ipBlocked = await wait(keys.ip, now);
    if (ipBlocked !== undefined) return ipBlocked;
    if (await throttle.takeAttempt(keys.account, now, ACCOUNT_RULE) === undefined) return (await wait(keys.account, now)) ?? 1;
    if (await throttle.takeAttempt(keys.daily, now, DAILY_RULE) === undefined) return (await wait(keys.daily, now)) ?? 1;
    return undefined;
  }
  async function failed(ip: string): Promise<void> {
    await throttle.recordFailure(throttleKeys('', ip).ip, clock.now(), THROTTLE.windowSeconds, delayAfter(THROTTLE.freeFailures.ip));
  }
  async function succeeded(userId: string): Promise<void> {
    const keys = throttleKeys(userId, '');
    await throttle.clear(keys.account);
    await throttle.clear(keys.daily);
  }

  /** The live session of this browser (signed in or not yet) and its account, or where to send it. */
  async function sessionOf(req: FastifyRequest): Promise<{ session: SsoSession; user: User } | undefined> {
    const session = await browserSessions.inProgress(req);
    if (!session) return undefined;
    const user = await users.findById(session.user_id);
    return user && !user.disabled ? { session, user } : undefined;
  }

  const queryOf = (req: FastifyRequest) => (req.query ?? {}) as Record<string, unknown>;
  const acrParam = (v: unknown) => (typeof v === 'string' && levelOf(v) > 0 ? v : undefined);
  const signInAgain = (reply: FastifyReply, returnTo: string) => reply.code(303).header('location', `/login?${new URLSearchParams({ return_to: returnTo })}`).send();

  /** The factors a session can use to reach `target`, or enrolment (FactorPageModel). */
  function offer(session: SsoSession, facts: AccountFactorCounts, target: string | null, now: Date):
  Pick<FactorPageModel, 'passkey' | 'totp' | 'recovery' | 'enrol' | 'verifyFirst'> | 'sign_in_again' {
    const passkeyOnly = levelOf(target) >= levelOf(ACR.phishingResistant);
    const usable = { passkey: facts.passkeys > 0, totp: facts.totp && !passkeyOnly, recovery: facts.recoveryCodes > 0 && !passkeyOnly };
    if (usable.passkey || (!passkeyOnly && facts.hasFactor)) return usable;
    // Nothing the account has reaches the level: enrol, if this session may.
    if (mayEnrol(session, facts, policy, now)) return { ...usable, enrol: { totp: !passkeyOnly, phishingResistant: passkeyOnly } };
    if (passkeyOnly && (facts.totp || facts.recoveryCodes > 0)) {
      return { passkey: false, totp: facts.totp, recovery: facts.recoveryCodes > 0, verifyFirst: true };
    }
    return usable.recovery ? usable : 'sign_in_again';
  }

  async function factorPageCsp(returnTo: string): Promise<string> {
    // A code form's redirects may end at the client (returnTo an authorization): form-action must allow it.
    return htmlCsp({ formAction: await context.formActionsAfterSignIn(returnTo), scriptHashes: [PASSKEY_SCRIPT_HASH] });
  }

  /** Shows the second-factor page, or moves on when the session already reached what is asked. */
  async function showFactorPage(req: FastifyRequest, reply: FastifyReply, s: { session: SsoSession; user: User }, returnTo: string, acr: string | undefined, error?: { status: number; message: string }): Promise<FastifyReply> {
    const target = targetAcr(s.session, policy, acr);
    if (!error && satisfies(s.session.acr, target) && browserSessions.complete(s.session)) {
      return reply.code(303).header('location', returnTo).send();
    }
    const facts = await accountFactors(store.db, s.user.id);
    const offered = offer(s.session, facts, target, clock.now());
    if (offered === 'sign_in_again') return signInAgain(reply, returnTo);
    reply.header('content-security-policy', await factorPageCsp(returnTo));
    const reason = offered.enrol ? 'enrol' : browserSessions.complete(s.session) ? 'step_up' : 'second_factor';
    return sendHtml(reply, error?.status ?? 200, factorPage({
      csrf: cookies.csrfToken(req, reply), returnTo, ...(acr ? { acr } : {}), username: s.user.username, reason, ...offered,
      ...(error ? { error: error.message } : {}),
    }));
  }

  const passkeyFactors = (r: { deviceBound: boolean; userVerified: boolean }): FactorName[] =>
    [r.deviceBound ? 'hwk' : 'swk', ...(r.userVerified ? ['uv' as const] : [])];

  /** JSON errors of the passkey endpoints (the script shows error_description). */
  const jsonError = (reply: FastifyReply, status: number, error: string, description: string) =>
    reply.code(status).header('cache-control', 'no-store').send({ error, error_description: description });
  const bodyOf = (req: FastifyRequest) => (req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {});

  /**
   * After a factor is enrolled: an operator's enrolment mark goes; when it is the account's first,
   * every other session (opened with the password alone, perhaps by whoever made the owner add
   * one) ends; recovery codes are offered if the account has none; and a passkey added in a
   * sign-in that used no second factor is used once right away — adding it proved nothing, and
   * until this session uses a factor of the account it may change none (policy.mayEnrol).
   */
  async function afterEnrolment(req: FastifyRequest, s: { session: SsoSession; user: User; facts: AccountFactorCounts }, next: string, added: 'passkey' | 'totp'): Promise<string> {
    await admin.enrolmentDone(s.user.id);
    if (!s.facts.hasFactor) {
      const fields = requestAuditFields(req);
      for (const ended of await browserSessions.endOthers(req, s.user.id)) void services.sessionEnd.sessionEnded(ended, fields);
    }
    const then = (await recovery.remaining(s.user.id)) === 0 ? `/account/recovery-codes?${new URLSearchParams({ return_to: next })}` : next;
    return added === 'passkey' && !provedSecondFactor(s.session.factor_times) ? factorPath(then, ACR.phishingResistant) : then;
  }

  return async (app) => {
    await app.register(cookie);
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: context.metrics });
    const passkeyLimit = limiter.endpoint('passkey', {
      perIp: config.loginRateLimitPerIp,
      onLimited: (_req, reply, seconds) => { void jsonError(reply.header('retry-after', String(seconds)), 429, 'slow_down', `Too many attempts. Try again in ${seconds} seconds.`); return undefined; },
    });
    const pageLimit = limiter.endpoint('factor', {
      perIp: config.loginRateLimitPerIp,
      onLimited: (_req, reply, seconds) => { sendHtml(reply.header('retry-after', String(seconds)), 429, errorPage('Too many requests', `Please wait ${seconds} seconds and try again.`)); return undefined; },
    });

    // ── Usernameless sign-in with a passkey (WebAuthn discoverable credentials, conditional UI) ──
    app.post('/login/passkey/options', { preHandler: passkeyLimit }, async (req, reply) => {
      if (!cookies.csrfValid(req, bodyOf(req).csrf)) return jsonError(reply, 403, 'invalid_request', 'The form expired. Reload the page.');
      return reply.header('cache-control', 'no-store').send(await passkeys.authenticationOptions(undefined, clock.now()));
    });

    app.post('/login/passkey', { preHandler: passkeyLimit }, async (req, reply) => {
      const body = bodyOf(req);
      if (!cookies.csrfValid(req, body.csrf)) return jsonError(reply, 403, 'invalid_request', 'The form expired. Reload the page.');
      const returnTo = safeReturnPath(body.return_to);
      const fields = requestAuditFields(req);
      const ipKey = ipThrottleKey(req.ip);
      const now = clock.now();
      const wait = await throttle.secondsBlocked([ipKey], now);
      if (wait !== undefined) {
        metrics.signIns.inc({ method: 'passkey', step: 'first', outcome: 'throttled' });
        return jsonError(reply.header('retry-after', String(wait)), 429, 'slow_down', `Too many attempts. Try again in ${wait} seconds.`);
      }
      // A passkey alone must verify its user (PIN or biometric): possession and a second factor in one.
      const result = await passkeys.authenticate(body.response, { requireUserVerification: true }, now);
      const user = result.ok ? await users.findById(result.userId) : undefined;
      if (!result.ok || !user || user.disabled) {
        await throttle.recordFailure(ipKey, now, THROTTLE.windowSeconds, delayAfter(THROTTLE.freeFailures.ip));
        const reason = !result.ok ? result.reason : 'disabled';
        metrics.signIns.inc({ method: 'passkey', step: 'first', outcome: 'failure' });
        // The account and passkey whenever they are known: also for a verified passkey of a disabled account.
        audit.record('login.failed', { ...fields, method: 'passkey', reason, ...(result.userId ? { sub: result.userId } : {}), ...(result.credentialId ? { credential_id: result.credentialId } : {}) });
        if (!result.ok && result.reason === 'counter_regression') audit.record('mfa.passkey.counter_regression', { ...fields, sub: result.userId, credential_id: result.credentialId });
        return jsonError(reply, 400, 'access_denied', !result.ok ? PASSKEY_MESSAGES[result.reason] : PASSKEY_MESSAGES.invalid);
      }
      const replaced = await browserSessions.end(req);
      if (replaced) void services.sessionEnd.sessionEnded(replaced, fields);
      const { session, sessionId } = await startSession(user, passkeyFactors(result), await context.signInFactors().requiredAcr(user, now), now, {
        sessions: browserSessions.sessions, sessionIdleTtl: config.sessionIdleTtl, sessionAbsoluteTtl: config.sessionAbsoluteTtl,
      });
      cookies.setSession(reply, sessionId, config.sessionAbsoluteTtl);
      cookies.renewCsrfToken(reply);
      metrics.signIns.inc({ method: 'passkey', step: 'first', outcome: 'success' });
      audit.record('login.succeeded', { ...fields, method: 'passkey', sub: user.id, sid: session.sid, amr: session.amr, acr: session.acr, credential_id: result.credentialId });
      const next = browserSessions.complete(session) ? returnTo : factorPath(returnTo);
      return reply.header('cache-control', 'no-store').send({ location: next });
    });

    // ── The second factor after the password, and step-up (acr_values) ──
    app.get('/login/factor', { preHandler: pageLimit }, async (req, reply) => {
      const q = queryOf(req);
      const returnTo = safeReturnPath(q.return_to);
      const s = await sessionOf(req);
      if (!s) return signInAgain(reply, returnTo);
      return showFactorPage(req, reply, s, returnTo, acrParam(q.acr));
    });

    /** A code form (TOTP or recovery code): CSRF, session, throttle; then `check`. */
    async function codeForm(req: FastifyRequest, reply: FastifyReply, method: 'totp' | 'recovery_code',
      check: (s: { session: SsoSession; user: User }, code: string, returnTo: string, acr: string | undefined) => Promise<(() => FastifyReply) | string>): Promise<FastifyReply> {
      const body = req.body;
      const returnTo = safeReturnPath(formField(body, 'return_to'));
      const acr = acrParam(formField(body, 'acr'));
      if (!cookies.csrfValid(req, formField(body, 'csrf'))) return sendHtml(reply, 403, FORM_EXPIRED_PAGE);
      const s = await sessionOf(req);
      if (!s) return signInAgain(reply, returnTo);
      const wait = await attempt(s.user.id, req.ip);
      if (wait !== undefined) {
        metrics.signIns.inc({ method, step: 'second', outcome: 'throttled' });
        audit.record('mfa.throttled', { ...requestAuditFields(req), sub: s.user.id, method });
        reply.header('retry-after', String(wait));
        return showFactorPage(req, reply, s, returnTo, acr, { status: 429, message: `Too many attempts. Try again in ${wait} seconds.` });
      }
      const outcome = await check(s, text(formField(body, 'code')), returnTo, acr);
      // Counted before the answer leaves: whoever reads the metric after the response sees it.
      if (typeof outcome !== 'string') { await succeeded(s.user.id); metrics.signIns.inc({ method, step: 'second', outcome: 'success' }); return outcome(); }
      await failed(req.ip);
      metrics.signIns.inc({ method, step: 'second', outcome: 'failure' });
      return showFactorPage(req, reply, s, returnTo, acr, { status: 401, message: outcome });
    }

    app.post('/login/factor/totp', { preHandler: pageLimit }, async (req, reply) => codeForm(req, reply, 'totp', async (s, code, returnTo, acr) => {
      const result = await totp.verify(s.user.id, code, clock.now());
      const fields = requestAuditFields(req);
      if (result !== 'ok') {
        audit.record('mfa.totp.failed', { ...fields, sub: s.user.id, sid: s.session.sid, reason: result });
        return result === 'replayed' ? 'That code was already used. Wait for the next one.' : 'That code is not right.';
      }
      const session = await browserSessions.addFactors(req, ['otp']);
      audit.record('mfa.totp.used', { ...fields, sub: s.user.id, sid: s.session.sid, amr: session?.amr, acr: session?.acr });
      return () => reply.code(303).header('location', factorPath(returnTo, acr)).send();
    }));

    app.post('/login/factor/recovery', { preHandler: pageLimit }, async (req, reply) => codeForm(req, reply, 'recovery_code', async (s, code, returnTo, acr) => {
      const result = await recovery.use(s.user.id, code, clock.now());
      const fields = requestAuditFields(req);
      if (!result.ok) {
        audit.record('mfa.recovery_code.failed', { ...fields, sub: s.user.id, sid: s.session.sid });
        return 'That recovery code is not right, or was used already.';
      }
      const session = await browserSessions.addFactors(req, ['recovery']);
      audit.record('mfa.recovery_code.used', { ...fields, sub: s.user.id, sid: s.session.sid, remaining: result.remaining, amr: session?.amr, acr: session?.acr });
      return () => sendHtml(reply, 200, recoveryUsedPage({ remaining: result.remaining, continueTo: factorPath(returnTo, acr) }));
    }));

    app.post('/login/factor/passkey/options', { preHandler: passkeyLimit }, async (req, reply) => {
      if (!cookies.csrfValid(req, bodyOf(req).csrf)) return jsonError(reply, 403, 'invalid_request', 'The form expired. Reload the page.');
      const s = await sessionOf(req);
      if (!s) return jsonError(reply, 401, 'login_required', 'Your sign-in expired. Start again.');
      return reply.header('cache-control', 'no-store').send(await passkeys.authenticationOptions(s.user.id, clock.now()));
    });

    app.post('/login/factor/passkey', { preHandler: passkeyLimit }, async (req, reply) => {
      const body = bodyOf(req);
      if (!cookies.csrfValid(req, body.csrf)) return jsonError(reply, 403, 'invalid_request', 'The form expired. Reload the page.');
      const returnTo = safeReturnPath(body.return_to);
      const acr = acrParam(body.acr);
      const s = await sessionOf(req);
      if (!s) return jsonError(reply, 401, 'login_required', 'Your sign-in expired. Start again.');
      const fields = requestAuditFields(req);
      // A passkey signature cannot be guessed: only the address's failures hold it back, so
      // someone guessing TOTP codes with the password does not lock the owner's passkey out.
      const wait = await ipWait(req.ip);
      if (wait !== undefined) {
        metrics.signIns.inc({ method: 'passkey', step: 'second', outcome: 'throttled' });
        return jsonError(reply.header('retry-after', String(wait)), 429, 'slow_down', `Too many attempts. Try again in ${wait} seconds.`);
      }
      const result = await passkeys.authenticate(body.response, { userId: s.user.id, requireUserVerification: false }, clock.now());
      if (!result.ok) {
        await failed(req.ip);
        metrics.signIns.inc({ method: 'passkey', step: 'second', outcome: 'failure' });
        audit.record('mfa.passkey.failed', { ...fields, sub: s.user.id, sid: s.session.sid, reason: result.reason, ...(result.credentialId ? { credential_id: result.credentialId } : {}) });
        if (result.reason === 'counter_regression') audit.record('mfa.passkey.counter_regression', { ...fields, sub: s.user.id, credential_id: result.credentialId });
        return jsonError(reply, 400, 'access_denied', PASSKEY_MESSAGES[result.reason]);
      }
      await succeeded(s.user.id);
      // A passkey added during this sign-in, after a phishable second factor, does not raise it
      // (else phishing the code and adding a key would): it counts from the next sign-in.
      const added = (await passkeys.list(s.user.id)).find((p) => p.id === result.credentialId)?.createdAt;
      if (added && added.getTime() >= s.session.created_at.getTime() && provedSecondFactor(s.session.factor_times)) {
        audit.record('mfa.passkey.used', { ...fields, sub: s.user.id, sid: s.session.sid, credential_id: result.credentialId, counted: false });
        return jsonError(reply, 400, 'access_denied', 'Your new passkey works from your next sign-in: sign out, then sign in with it.');
      }
      const session = await browserSessions.addFactors(req, passkeyFactors(result));
      metrics.signIns.inc({ method: 'passkey', step: 'second', outcome: 'success' });
      audit.record('mfa.passkey.used', { ...fields, sub: s.user.id, sid: s.session.sid, credential_id: result.credentialId, amr: session?.amr, acr: session?.acr });
      return reply.header('cache-control', 'no-store').send({ location: factorPath(returnTo, acr) });
    });

    // ── Enrolment: passkeys, TOTP, recovery codes ──
    /**
     * The session and account when this browser may add a factor now (policy.mayEnrol), else
     * undefined. Adding or removing a passkey of an account that has passkeys takes a session
     * that used one: a phishable factor (a TOTP or recovery code) never vouches for a passkey.
     */
    async function enrolling(req: FastifyRequest, passkeyChange = false): Promise<{ session: SsoSession; user: User; facts: AccountFactorCounts } | undefined> {
      const s = await sessionOf(req);
      if (!s) return undefined;
      const facts = await accountFactors(store.db, s.user.id);
      if (passkeyChange && facts.passkeys > 0 && !provedPasskey(s.session.factor_times)) return undefined;
      // After an operator's reset (or enrolment mark), only a sign-in begun since may enrol: a
      // session from before — perhaps the intruder's, about to be ended — may not add its own factor.
      if (facts.enrolmentRequiredAt && s.session.created_at.getTime() < facts.enrolmentRequiredAt.getTime()) return undefined;
      return mayEnrol(s.session, facts, policy, clock.now()) ? { ...s, facts } : undefined;
    }

    app.post('/account/passkeys/options', { preHandler: passkeyLimit }, async (req, reply) => {
      if (!cookies.csrfValid(req, bodyOf(req).csrf)) return jsonError(reply, 403, 'invalid_request', 'The form expired. Reload the page.');
      const s = await enrolling(req, true);
      if (!s) return jsonError(reply, 403, 'login_required', 'Sign in again (with one of your passkeys, if you have any) to add a passkey.');
      return reply.header('cache-control', 'no-store').send(await passkeys.registrationOptions(s.user, clock.now()));
    });

    app.post('/account/passkeys', { preHandler: passkeyLimit }, async (req, reply) => {
      const body = bodyOf(req);
      if (!cookies.csrfValid(req, body.csrf)) return jsonError(reply, 403, 'invalid_request', 'The form expired. Reload the page.');
      const s = await enrolling(req, true);
      if (!s) return jsonError(reply, 403, 'login_required', 'Sign in again (with one of your passkeys, if you have any) to add a passkey.');
      const returnTo = safeReturnPath(body.return_to ?? '/account');
      const fields = requestAuditFields(req);
      const result = await passkeys.register(s.user, body.response, text(body.name), clock.now());
      if (!result.ok) {
        audit.record('mfa.passkey.enrolment_failed', { ...fields, sub: s.user.id, reason: result.reason });
        return jsonError(reply, 400, 'invalid_request', PASSKEY_MESSAGES[result.reason]);
      }
      // Adding a passkey proves nothing about this sign-in: else a session that phished a password
      // and a TOTP code would reach the phishing-resistant level by adding its own key. The new
      // passkey is used like any other (the second-factor page offers it next).
      metrics.factorChanges.inc({ factor: 'passkey', change: 'enrolled' });
      audit.record('mfa.passkey.enrolled', { ...fields, sub: s.user.id, credential_id: result.passkey.id, name: result.passkey.name, device_bound: result.passkey.deviceBound, backed_up: result.passkey.backedUp });
      return reply.header('cache-control', 'no-store').send({ location: await afterEnrolment(req, s, factorPath(returnTo, acrParam(body.acr)), 'passkey') });
    });

    app.get('/account/totp', { preHandler: pageLimit }, async (req, reply) => {
      const q = queryOf(req);
      const returnTo = safeReturnPath(q.return_to ?? '/account');
      const s = await enrolling(req);
      if (!s) return signInAgain(reply, req.url);
      if (s.facts.totp) return reply.code(303).header('location', '/account').send();
      const started = await totp.begin(s.user, clock.now());
      if (!started) return reply.code(303).header('location', '/account').send();
      reply.header('cache-control', 'no-store');
      const acr = acrParam(q.acr);
      return sendHtml(reply, 200, totpSetupPage({ csrf: cookies.csrfToken(req, reply), returnTo, ...(acr ? { acr } : {}), ...started }));
    });

    app.post('/account/totp', { preHandler: pageLimit }, async (req, reply) => {
      const body = req.body;
      const returnTo = safeReturnPath(formField(body, 'return_to') ?? '/account');
      const acr = acrParam(formField(body, 'acr'));
      if (!cookies.csrfValid(req, formField(body, 'csrf'))) return sendHtml(reply, 403, FORM_EXPIRED_PAGE);
      const s = await enrolling(req);
      if (!s) return signInAgain(reply, '/account');
      const wait = await attempt(s.user.id, req.ip);
      if (wait !== undefined) return sendHtml(reply.header('retry-after', String(wait)), 429, errorPage('Too many attempts', `Please wait ${wait} seconds and try again.`));
      const fields = requestAuditFields(req);
      if (await totp.confirm(s.user.id, text(formField(body, 'code')), clock.now()) !== 'ok') {
        await failed(req.ip);
        audit.record('mfa.totp.enrolment_failed', { ...fields, sub: s.user.id });
        const again = `/account/totp?${new URLSearchParams({ return_to: returnTo, ...(acr ? { acr } : {}) })}`;
        return sendHtml(reply, 401, totpRetryPage({ again }));
      }
      await succeeded(s.user.id);
      await browserSessions.addFactors(req, ['otp']);
      metrics.factorChanges.inc({ factor: 'totp', change: 'enrolled' });
      audit.record('mfa.totp.enrolled', { ...fields, sub: s.user.id });
      return reply.code(303).header('location', await afterEnrolment(req, s, factorPath(returnTo, acr), 'totp')).send();
    });

    app.get('/account/recovery-codes', { preHandler: pageLimit }, async (req, reply) => {
      const returnTo = safeReturnPath(queryOf(req).return_to ?? '/account');
      const s = await enrolling(req);
      if (!s) return signInAgain(reply, '/account');
      return sendHtml(reply, 200, recoveryOfferPage({ csrf: cookies.csrfToken(req, reply), returnTo }));
    });

    app.post('/account/recovery-codes', { preHandler: pageLimit }, async (req, reply) => {
      const body = req.body;
      const returnTo = safeReturnPath(formField(body, 'return_to') ?? '/account');
      if (!cookies.csrfValid(req, formField(body, 'csrf'))) return sendHtml(reply, 403, FORM_EXPIRED_PAGE);
      const s = await enrolling(req);
      if (!s) return signInAgain(reply, '/account');
      const codes = await recovery.generate(s.user.id, clock.now());
      metrics.factorChanges.inc({ factor: 'recovery_codes', change: 'enrolled' });
      audit.record('mfa.recovery_codes.generated', { ...requestAuditFields(req), sub: s.user.id, count: codes.length });
      reply.header('cache-control', 'no-store');
      return sendHtml(reply, 200, recoveryCodesPage({ codes, continueTo: returnTo }));
    });

    // ── The account page ──
    /** A signed-in session that may change factors now, or the reply sending it to sign in again. */
    async function changing(req: FastifyRequest, reply: FastifyReply, passkeyChange = false): Promise<{ session: SsoSession; user: User } | FastifyReply> {
      if (!cookies.csrfValid(req, formField(req.body, 'csrf'))) return sendHtml(reply, 403, FORM_EXPIRED_PAGE);
      const session = await browserSessions.current(req);
      const s = session ? await enrolling(req, passkeyChange) : undefined;
      return s ?? signInAgain(reply, '/account');
    }

    app.get('/account', async (req, reply) => {
      const session = await browserSessions.current(req);
      if (!session) {
        const pending = await browserSessions.inProgress(req);
        return reply.code(303).header('location', pending ? factorPath('/account') : '/login?return_to=%2Faccount').send();
      }
      const user = await users.findById(session.user_id);
      if (!user) return signInAgain(reply, '/account');
      const facts = await accountFactors(store.db, user.id);
      const [keys, totpStatus, granted] = await Promise.all([passkeys.list(user.id), totp.status(user.id), consents.listFor(user.id)]);
      const apps = await Promise.all(granted.map(async (g) => {
        const client = await services.clients.get(g.clientId);
        return { clientId: g.clientId, name: client?.metadata.client_name ?? g.clientId, scopes: g.scopes, grantedAt: g.grantedAt };
      }));
      const notice = queryOf(req).notice;
      reply.header('content-security-policy', htmlCsp({ scriptHashes: [PASSKEY_SCRIPT_HASH] })).header('cache-control', 'no-store');
      return sendHtml(reply, 200, accountSecurityPage({
        csrf: cookies.csrfToken(req, reply), username: user.username, acr: session.acr, amr: session.amr,
        mayChange: mayEnrol(session, facts, policy, clock.now()), recentMinutes: Math.round(policy.recentSignInSeconds / 60),
        passkeys: keys, totp: totpStatus, recoveryRemaining: facts.recoveryCodes, apps,
        ...(typeof notice === 'string' && NOTICES[notice] ? { notice: NOTICES[notice] } : {}),
      }));
    });

    app.post('/account/passkeys/:id/remove', async (req, reply) => {
      const s = await changing(req, reply, true);
      if (!('session' in s)) return s;
      const id = (req.params as { id: string }).id;
      const removed = await passkeys.remove(s.user.id, id);
      if (removed) {
        metrics.factorChanges.inc({ factor: 'passkey', change: 'removed' });
        audit.record('mfa.passkey.removed', { ...requestAuditFields(req), sub: s.user.id, credential_id: id });
      }
      return reply.code(303).header('location', `/account?notice=${removed ? 'passkey_removed' : 'not_found'}`).send();
    });

    app.post('/account/totp/remove', async (req, reply) => {
      const s = await changing(req, reply);
      if (!('session' in s)) return s;
      const removed = await totp.remove(s.user.id);
      if (removed) {
        metrics.factorChanges.inc({ factor: 'totp', change: 'removed' });
        audit.record('mfa.totp.removed', { ...requestAuditFields(req), sub: s.user.id });
      }
      return reply.code(303).header('location', `/account?notice=${removed ? 'totp_removed' : 'not_found'}`).send();
    });

    // Withdrawing consent needs no recent sign-in: it only takes access away.
    app.post('/account/apps/:client_id/withdraw', async (req, reply) => {
      if (!cookies.csrfValid(req, formField(req.body, 'csrf'))) return sendHtml(reply, 403, FORM_EXPIRED_PAGE);
      const session = await browserSessions.current(req);
      if (!session) return signInAgain(reply, '/account');
      const clientId = (req.params as { client_id: string }).client_id;
      const fields = requestAuditFields(req);
      const result = await services.families.revokeFamilies({ userId: session.user_id, clientId }, 'consent_withdrawn', { revoked_by: 'user', ...fields });
      if (result.consentDeleted) audit.record('consent.withdrawn', { ...fields, sub: session.user_id, client_id: clientId, families: result.families });
      return reply.code(303).header('location', `/account?notice=${result.consentDeleted ? 'app_removed' : 'not_found'}`).send();
    });
  };
}

const NOTICES: Record<string, string> = {
  passkey_removed: 'The passkey was removed.',
  totp_removed: 'The authenticator app was turned off.',
  app_removed: 'The app no longer has access: its refresh tokens and the access tokens issued with them were revoked (an access token of a sign-in without offline access runs out within ACCESS_TOKEN_TTL).',
  not_found: 'That was already gone.',
};
