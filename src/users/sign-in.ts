import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.js';
import type { AuditLog } from '../platform/observability/audit.js';
import { randomToken, sha256 } from '../platform/crypto.js';
import type { LoginThrottleRepository } from './sign-in-throttle-store.js';
import type { SessionRepository, SsoSession } from './session-store.js';
import type { User, UserRepository } from './user-store.js';
import type { PasswordHasher } from './passwords.js';
import { addressKey, FixedWindowCounter } from '../platform/fixed-window.js';

/**
 * First-party sign-in with a password: throttling against guessing, one generic failure for
 * every reason (unknown login, wrong password, disabled user), the same argon2 work in each
 * case, and an SSO session on success.
 */
export interface SignInDeps {
  users: UserRepository;
  sessions: SessionRepository;
  throttle: LoginThrottleRepository;
  hasher: PasswordHasher;
  clock: Clock;
  audit: AuditLog;
  sessionIdleTtl: number;
  sessionAbsoluteTtl: number;
}

export interface SignInInput {
  login: string;
  password: string;
  ip: string;
  userAgent?: string | undefined;
  requestId?: string | undefined;
}

export type SignInResult =
  | { kind: 'signed_in'; user: User; session: SsoSession; sessionId: string }
  | { kind: 'rejected' }
  | { kind: 'throttled'; retryAfterSeconds: number };

/**
 * Growing delay: an account gets 5 free failures, an IP 20 (many people can share one); each
 * failure after that doubles the wait, up to 15 minutes. Counters forget after 15 quiet minutes.
 */
export const THROTTLE = {
  windowSeconds: 900,
  maxDelaySeconds: 900,
  freeFailures: { account: 5, ip: 20 },
};

const delayAfter = (free: number) => (failures: number) =>
  failures <= free ? 0 : Math.min(2 ** (failures - free), THROTTLE.maxDelaySeconds);

export const MAX_LOGIN_LENGTH = 254;

export async function signIn(input: SignInInput, deps: SignInDeps): Promise<SignInResult> {
  const now = deps.clock.now();
  // No login name contains a NUL byte (PostgreSQL text cannot hold one): it becomes U+FFFD, so
  // such a login is an unknown one — same work, same answer — and its failure is still counted.
  const login = input.login.replace(/\u0000/g, '\uFFFD').trim().slice(0, MAX_LOGIN_LENGTH);
  const accountKey = `account:${login.toLowerCase()}`;
  // Per address as every limit counts it: an IPv6 address by its /64 (src/platform/fixed-window.ts).
  const ipKey = `ip:${addressKey(input.ip)}`;
  const context = { ip: input.ip, user_agent: input.userAgent, request_id: input.requestId };

  const blocked = await deps.throttle.blockedUntil([accountKey, ipKey], now);
  if (blocked) {
    deps.audit.record('login.throttled', context);
    return { kind: 'throttled', retryAfterSeconds: FixedWindowCounter.secondsUntil(blocked.getTime(), now.getTime()) };
  }

  const user = login ? await deps.users.findByLogin(login) : undefined;
  const verified = await deps.hasher.verify(user?.password_hash ?? null, input.password);
  if (!user || !verified.ok || user.disabled) {
    await deps.throttle.recordFailure(accountKey, now, THROTTLE.windowSeconds, delayAfter(THROTTLE.freeFailures.account));
    await deps.throttle.recordFailure(ipKey, now, THROTTLE.windowSeconds, delayAfter(THROTTLE.freeFailures.ip));
    const reason = !user ? 'unknown_user' : user.disabled ? 'disabled' : 'bad_password';
    deps.audit.record('login.failed', { ...context, reason, ...(user ? { sub: user.id } : {}) });
    return { kind: 'rejected' };
  }

  await deps.throttle.clear(accountKey);
  if (verified.rehash) {
    await deps.users.upgradePasswordHash(user.id, user.password_hash!, await deps.hasher.hash(input.password).catch(() => user.password_hash!));
  }
  const sessionId = randomToken();
  const session = await deps.sessions.create({
    idHash: sha256(sessionId),
    sid: randomUUID(),
    userId: user.id,
    authTime: now,
    amr: ['pwd'],
    acr: null,
    idleTtlSeconds: deps.sessionIdleTtl,
    absoluteTtlSeconds: deps.sessionAbsoluteTtl,
  }, now);
  deps.audit.record('login.succeeded', { ...context, sub: user.id, sid: session.sid, amr: session.amr });
  return { kind: 'signed_in', user, session, sessionId };
}
