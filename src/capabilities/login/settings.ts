import { defineSlice, duration, integer, setting } from '../../platform/config/settings.js';

/** Sign-in: SSO session lifetimes, the per-IP and per-login limits of POST /login, and how long the throttle knows a browser or address. */
export const loginSettings = defineSlice({
  name: 'login',
  settings: {
    sessionIdleTtl: setting('SESSION_IDLE_TTL', duration(60, 30 * 86400).default(1800).describe('SSO session idle lifetime: a session unused this long ends (slides with each use).')),
    sessionAbsoluteTtl: setting('SESSION_ABSOLUTE_TTL', duration(300, 400 * 86400).default(36000).describe('SSO session absolute lifetime from sign-in; never extended.')),
    loginRateLimitPerIp: setting('LOGIN_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(300).describe('Sign-in attempts (POST /login) per RATE_LIMIT_WINDOW from one IP address, whatever their outcome (bounds the argon2 work one address can cause; failures are also throttled per account and IP, see Sign-in).')),
    loginRateLimitPerLogin: setting('LOGIN_RATE_LIMIT_PER_LOGIN', integer(1, 10_000_000).default(30).describe('Sign-in attempts (POST /login) per RATE_LIMIT_WINDOW for one submitted login name from one IP address (the per-account throttle with its growing delay works across addresses).')),
    loginKnownTtl: setting('LOGIN_KNOWN_TTL', duration(86400, 400 * 86400).default(90 * 86400).describe('How long a browser (its known-device cookie) and an address stay known to an account after it signed in from them: attempts from them count against allowances of their own in the sign-in throttle, so strangers cannot lock the owner out (see Sign-in).')),
  },
  check: (c) => (c.sessionIdleTtl > c.sessionAbsoluteTtl ? ['SESSION_IDLE_TTL: must not exceed SESSION_ABSOLUTE_TTL'] : []),
});
