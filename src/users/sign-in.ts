import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.js';
import type { AuditLog } from '../platform/observability/audit.js';
import { randomToken, sha256 } from '../platform/crypto.js';
import type { KnownAddressRepository } from './known-address-store.js';
import type { KnownDevice, KnownDeviceCookies } from './known-device.js';
import type { LoginThrottleRepository } from './sign-in-throttle-store.js';
import type { SessionRepository, SsoSession } from './session-store.js';
import type { User, UserRepository } from './user-store.js';
import type { PasswordHasher } from './passwords.js';
import type { FactorName } from '../oauth/assurance.js';
import { addressKey } from '../platform/fixed-window.js';

/**
 * First-party sign-in with a password: throttling against guessing, one generic failure for
 * every reason (unknown login, wrong password, disabled user), the same argon2 work in each
 * case, and an SSO session on success.
 */
export interface SignInDeps {
  users: UserRepository;
  sessions: SessionRepository;
  throttle: LoginThrottleRepository;
  knownAddresses: KnownAddressRepository;
  knownDevices: KnownDeviceCookies;
  hasher: PasswordHasher;
  clock: Clock;
  audit: AuditLog;
  sessionIdleTtl: number;
  sessionAbsoluteTtl: number;
  /**
   * The level the account must reach before its session counts as signed in: its MFA policy
   * (the mfa capability, via the sign-in hooks); null when the password is enough.
   */
  requiredAcr(user: User, now: Date): Promise<string | null>;
}

export interface SignInInput {
  login: string;
  password: string;
  ip: string;
  userAgent?: string | undefined;
  requestId?: string | undefined;
  /** The browser's known-device cookie, as it came (verified here). */
  deviceCookie?: string | undefined;
}

export type SignInResult =
  /** `deviceCookie`: the browser's new known-device cookie, valid `knownDevices.ttlSeconds`. */
  | { kind: 'signed_in'; user: User; session: SsoSession; sessionId: string; deviceCookie: string }
  | { kind: 'rejected' }
  | { kind: 'throttled'; retryAfterSeconds: number };

/**
 * Growing delay: an account gets 5 free failures, an IP 20 (many people can share one); each
 * failure after that doubles the wait, up to 15 minutes. Counters forget after 15 quiet minutes.
 * "An account" is one of its allowances (throttleKey): strangers share one, and each browser and
 * address it signed in from before has one of its own; one allowance allows at most about 50
 * failures an hour. Over all its allowances together an account allows 100 failures in one clock
 * hour, then none for an hour: OWASP ASVS 2.2.1's "no more than 100 failed attempts per hour …
 * on a single account" (NIST SP 800-63B §5.2.2: at most 100 consecutive failures), reached only
 * by someone failing from a browser or network the owner used, never by strangers alone.
 */
export const THROTTLE = {
  windowSeconds: 900,
  maxDelaySeconds: 900,
  freeFailures: { account: 5, ip: 20 },
  accountCap: { failures: 100, windowSeconds: 3600 },
  /** Second factors (src/capabilities/mfa): at most this many attempts a day per account, however paced. */
  secondFactorCap: { attempts: 100, windowSeconds: 86400 },
};

/** The growing delay after `free` failures (THROTTLE): the password's, and a second factor's (src/capabilities/mfa). */
export const delayAfter = (free: number) => (failures: number) =>
  failures <= free ? 0 : Math.min(2 ** (failures - free), THROTTLE.maxDelaySeconds);
const capped = (failures: number) => (failures >= THROTTLE.accountCap.failures ? THROTTLE.accountCap.windowSeconds : 0);

export const MAX_LOGIN_LENGTH = 254;

/** The sign-in throttle's counter of an address (an IPv6 address by its /64): password and passkey failures share it. */
export const ipThrottleKey = (ip: string) => `ip:${addressKey(ip)}`;

/**
 * The account cap counts in fixed clock hours (a key per hour), not "since the last quiet
 * hour": strangers failing as fast as their shared allowance lets them (about 40 an hour) never
 * reach 100 in one hour, however long they keep at it. The previous hour's key is checked too,
 * as the block it set may reach into this one.
 */
function capKeys(userId: string, now: Date): { current: string; previous: string } {
  const hour = Math.floor(now.getTime() / (THROTTLE.accountCap.windowSeconds * 1000));
  return { current: `account:${userId}|all|${hour}`, previous: `account:${userId}|all|${hour - 1}` };
}

/** Which of an account's allowances an attempt spends (audit field `allowance`). */
type Allowance = 'known_device' | 'known_address' | 'others';

/**
 * The account's throttle counter an attempt counts against (OWASP ASVS 2.2.1, NIST SP 800-63B
 * §5.2.2: limit failed attempts per account without letting an attacker lock its owner out).
 * Keyed by the account, not by the login typed, so its username and e-mail address share it;
 * a login that names no account by the login itself. A browser holding a valid known-device
 * cookie of this account, or an address it signed in from within LOGIN_KNOWN_TTL, has a counter
 * of its own: strangers' failures block only the counter they share.
 */
async function throttleKey(login: string, user: User | undefined, device: KnownDevice | undefined, address: string, now: Date, deps: SignInDeps):
Promise<{ key: string; allowance: Allowance }> {
  if (!user) {
    // The same lookup as for an account (no timing difference), which finds nothing.
    await deps.knownAddresses.isKnown('', address, now);
    return { key: `login:${login.toLowerCase()}`, allowance: 'others' };
  }
  if (device?.userId === user.id) return { key: `account:${user.id}|device:${device.deviceId}`, allowance: 'known_device' };
  const since = new Date(now.getTime() - deps.knownDevices.ttlSeconds * 1000);
  if (await deps.knownAddresses.isKnown(user.id, address, since)) return { key: `account:${user.id}|address:${address}`, allowance: 'known_address' };
  return { key: `account:${user.id}`, allowance: 'others' };
}

/**
 * A new SSO session for `user`, who proved `factors` now: its cookie value (256 bits, stored as
 * SHA-256) and the row. The one way a session starts, by password or by passkey.
 */
export async function startSession(
  user: User, factors: readonly FactorName[], requiredAcr: string | null, now: Date,
  deps: Pick<SignInDeps, 'sessions' | 'sessionIdleTtl' | 'sessionAbsoluteTtl'>,
): Promise<{ session: SsoSession; sessionId: string }> {
  const sessionId = randomToken();
  const session = await deps.sessions.create({
    idHash: sha256(sessionId),
    sid: randomUUID(),
    userId: user.id,
    authTime: now,
    factors,
    requiredAcr,
    idleTtlSeconds: deps.sessionIdleTtl,
    absoluteTtlSeconds: deps.sessionAbsoluteTtl,
  }, now);
  return { session, sessionId };
}

export async function signIn(input: SignInInput, deps: SignInDeps): Promise<SignInResult> {
  const now = deps.clock.now();
  // No login name contains a NUL byte (PostgreSQL text cannot hold one): it becomes U+FFFD, so
  // such a login is an unknown one — same work, same answer — and its failure is still counted.
  const login = input.login.replace(/\u0000/g, '\uFFFD').trim().slice(0, MAX_LOGIN_LENGTH);
  // Per address as every limit counts it: an IPv6 address by its /64 (src/platform/fixed-window.ts).
  const address = addressKey(input.ip);
  const ipKey = ipThrottleKey(input.ip);
  const context = { ip: input.ip, user_agent: input.userAgent, request_id: input.requestId };

  // Finding the account is one indexed read; the throttle is checked before any argon2 work.
  const user = login ? await deps.users.findByLogin(login) : undefined;
  const device = deps.knownDevices.verify(input.deviceCookie, now);
  const { key: accountKey, allowance } = await throttleKey(login, user, device, address, now, deps);
  const cap = user ? capKeys(user.id, now) : undefined;
  const blocked = await deps.throttle.secondsBlocked([accountKey, ipKey, ...(cap ? [cap.current, cap.previous] : [])], now);
  if (blocked !== undefined) {
    deps.audit.record('login.throttled', { ...context, allowance, ...(user ? { sub: user.id } : {}) });
    return { kind: 'throttled', retryAfterSeconds: blocked };
  }

  const verified = await deps.hasher.verify(user?.password_hash ?? null, input.password);
  if (!user || !verified.ok || user.disabled) {
    await deps.throttle.recordFailure(accountKey, now, THROTTLE.windowSeconds, delayAfter(THROTTLE.freeFailures.account));
    await deps.throttle.recordFailure(ipKey, now, THROTTLE.windowSeconds, delayAfter(THROTTLE.freeFailures.ip));
    if (cap) await deps.throttle.recordFailure(cap.current, now, THROTTLE.accountCap.windowSeconds, capped);
    const reason = !user ? 'unknown_user' : user.disabled ? 'disabled' : 'bad_password';
    deps.audit.record('login.failed', { ...context, reason, allowance, ...(user ? { sub: user.id } : {}) });
    return { kind: 'rejected' };
  }

  // Only the allowance this attempt used starts again (and the cap, which counts consecutive
  // failures): a success from a known browser does not give strangers back the attempts they spent.
  await deps.throttle.clear(accountKey);
  if (cap) { await deps.throttle.clear(cap.current); await deps.throttle.clear(cap.previous); }
  await deps.knownAddresses.remember(user.id, address, now);
  const deviceCookie = deps.knownDevices.issue(user.id, now, device?.userId === user.id ? device.deviceId : undefined);
  if (verified.rehash) {
    await deps.users.upgradePasswordHash(user.id, user.password_hash!, await deps.hasher.hash(input.password).catch(() => user.password_hash!));
  }
  const { session, sessionId } = await startSession(user, ['pwd'], await deps.requiredAcr(user, now), now, deps);
  deps.audit.record('login.succeeded', { ...context, sub: user.id, sid: session.sid, amr: session.amr, allowance, ...(session.required_acr ? { required_acr: session.required_acr } : {}) });
  return { kind: 'signed_in', user, session, sessionId, deviceCookie };
}
