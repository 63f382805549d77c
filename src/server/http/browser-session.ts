import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomToken, safeEqual, sha256 } from '../../platform/crypto.js';
import type { Clock } from '../../platform/clock.js';
import type { SessionRepository, SsoSession } from '../../users/session-store.js';
import { satisfies, type FactorName } from '../../oauth/assurance.js';

/**
 * The browser's side of sign-in: the SSO session cookie, the CSRF cookie and the known-device
 * cookie of the sign-in throttle (src/users/known-device.ts). On an https issuer all use the
 * `__Host-` prefix (Secure, Path=/, no Domain: no subdomain can plant or read them); all are
 * HttpOnly and SameSite=Lax.
 */
export class BrowserCookies {
  readonly sessionName: string;
  readonly csrfName: string;
  readonly deviceName: string;
  private readonly secure: boolean;

  constructor(issuer: string) {
    this.secure = issuer.startsWith('https:');
    const prefix = this.secure ? '__Host-' : '';
    this.sessionName = `${prefix}latchkey_session`;
    this.csrfName = `${prefix}latchkey_csrf`;
    this.deviceName = `${prefix}latchkey_device`;
  }

  private options(maxAgeSeconds?: number) {
    return { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: this.secure, ...(maxAgeSeconds !== undefined ? { maxAge: maxAgeSeconds } : {}) };
  }

  setSession(reply: FastifyReply, sessionId: string, maxAgeSeconds: number): void {
    reply.setCookie(this.sessionName, sessionId, this.options(maxAgeSeconds));
  }

  clearSession(reply: FastifyReply): void {
    reply.clearCookie(this.sessionName, this.options());
  }

  /** Kept across sign-outs: it says only that this browser signed in to an account before. */
  setDevice(reply: FastifyReply, value: string, maxAgeSeconds: number): void {
    reply.setCookie(this.deviceName, value, this.options(maxAgeSeconds));
  }

  /** The known-device cookie as sent (unverified). */
  device(req: FastifyRequest): string | undefined {
    return req.cookies[this.deviceName];
  }

  sessionId(req: FastifyRequest): string | undefined {
    const v = req.cookies[this.sessionName];
    return v && /^[A-Za-z0-9_-]{43}$/.test(v) ? v : undefined;
  }

  /**
   * The CSRF token for a form: double-submit of a random cookie value. Reuses the browser's
   * cookie when it has one, so several open tabs stay valid.
   */
  csrfToken(req: FastifyRequest, reply: FastifyReply): string {
    const existing = req.cookies[this.csrfName];
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    return this.renewCsrfToken(reply);
  }

  /**
   * A new CSRF token, replacing the browser's: at sign-in and sign-out, so a token known before
   * (planted, or read off an earlier page) does not carry over into another session.
   */
  renewCsrfToken(reply: FastifyReply): string {
    const token = randomToken();
    reply.setCookie(this.csrfName, token, this.options());
    return token;
  }

  csrfValid(req: FastifyRequest, submitted: unknown): boolean {
    const cookie = req.cookies[this.csrfName];
    return typeof submitted === 'string' && typeof cookie === 'string' && cookie.length === 43 && safeEqual(cookie, submitted);
  }
}

/**
 * The SSO session of the browser making a request, found by its cookie: the one way the sign-in,
 * sign-out and authorization pages read and end it.
 */
export class BrowserSessions {
  readonly cookies: BrowserCookies;

  /**
   * `floor`: the level every session must have reached to count (MFA_REQUIRED), besides the one
   * its account needed when it signed in — so raising the policy takes effect at once.
   */
  constructor(
    issuer: string, readonly sessions: SessionRepository, private readonly idleTtl: number, private readonly clock: Clock,
    private readonly floor: string | null = null,
    /** How long a sign-in may wait for its second factor or enrolment before it must start again (seconds). */
    private readonly unfinishedTtl = 900,
  ) {
    this.cookies = new BrowserCookies(issuer);
  }

  /**
   * The signed-in session of this browser (its idle expiry slid forward), if any: a live session
   * that reached the level its account requires. One still waiting for a second factor or an
   * enrolment is not a signed-in browser anywhere (see inProgress).
   */
  async current(req: FastifyRequest): Promise<SsoSession | undefined> {
    const session = await this.inProgress(req);
    return session && this.complete(session) ? session : undefined;
  }

  /** Whether a session reached the level its account requires and MFA_REQUIRED. */
  complete(session: SsoSession): boolean {
    return satisfies(session.acr, session.required_acr) && satisfies(session.acr, this.floor);
  }

  /**
   * The live session of this browser, signed in or still proving its factors: only for the pages
   * that finish a sign-in. One that never reached its level is a sign-in in progress, and it has
   * `unfinishedTtl` from its start to finish — not the whole session lifetime a password alone
   * would otherwise keep open for guessing the second factor.
   */
  async inProgress(req: FastifyRequest): Promise<SsoSession | undefined> {
    const id = this.cookies.sessionId(req);
    if (!id) return undefined;
    const now = this.clock.now();
    const session = await this.sessions.touch(sha256(id), this.idleTtl, now);
    if (session && !this.complete(session) && now.getTime() - session.created_at.getTime() > this.unfinishedTtl * 1000) return undefined;
    return session;
  }

  /** Records factors this browser's session proved now (a second factor, a step-up); the session after. */
  async addFactors(req: FastifyRequest, proved: readonly FactorName[]): Promise<SsoSession | undefined> {
    const id = this.cookies.sessionId(req);
    return id ? this.sessions.addFactors(sha256(id), proved, this.clock.now()) : undefined;
  }

  /** Ends every other live session of this browser's user; returns those it ended. */
  async endOthers(req: FastifyRequest, userId: string): Promise<SsoSession[]> {
    const id = this.cookies.sessionId(req);
    return id ? this.sessions.endOthers(userId, sha256(id), this.clock.now()) : [];
  }

  /** Ends this browser's session, if it has a live one; returns it. */
  async end(req: FastifyRequest): Promise<SsoSession | undefined> {
    const id = this.cookies.sessionId(req);
    return id ? this.sessions.end(sha256(id), this.clock.now()) : undefined;
  }
}
