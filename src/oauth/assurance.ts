/**
 * How strongly a session's person was authenticated: the factors it used (and when), the
 * Authentication Method Reference values they make (RFC 8176) and the Authentication Context
 * Class Reference levels this server advertises (OpenID Connect Core §2 `acr`,
 * `acr_values_supported`). Pure: no database, no HTTP.
 */

/** The levels, weakest first: each one includes the ones before it. */
export const ACR = {
  /** One factor: a password. */
  password: 'urn:latchkey:acr:password',
  /** Two factors of different kinds (password and a one-time code, a passkey with user verification…). */
  mfa: 'urn:latchkey:acr:mfa',
  /** Two factors, one of them a passkey (WebAuthn: bound to this origin, so a phishing site cannot relay it). */
  phishingResistant: 'urn:latchkey:acr:phishing-resistant',
} as const;

export type AcrValue = (typeof ACR)[keyof typeof ACR];

/** Discovery's `acr_values_supported`, in order of strength. */
export const ACR_VALUES: readonly AcrValue[] = [ACR.password, ACR.mfa, ACR.phishingResistant];

/** The short names operators use in settings and the CLI (MFA_REQUIRED). */
export const ACR_BY_NAME: Readonly<Record<string, AcrValue>> = {
  password: ACR.password, mfa: ACR.mfa, 'phishing-resistant': ACR.phishingResistant,
};

/** 0 for an unknown or absent value (a level nobody reaches by it), 1… for the advertised ones. */
export function levelOf(acr: string | null | undefined): number {
  return acr ? ACR_VALUES.indexOf(acr as AcrValue) + 1 : 0;
}

/** Whether `acr` is at least `required` (no requirement: always). */
export function satisfies(acr: string | null | undefined, required: string | null | undefined): boolean {
  return levelOf(required) === 0 || levelOf(acr) >= levelOf(required);
}

/** The stronger of two levels (null when neither is one). */
export function strongest(...values: readonly (string | null | undefined)[]): AcrValue | null {
  let best: AcrValue | null = null;
  for (const v of values) if (levelOf(v) > levelOf(best)) best = v as AcrValue;
  return best;
}

/**
 * What a session proved, by factor, with the time it was last proved (epoch ms). Kept in the
 * session (sessions.factor_times) so the level and each factor's time survive a restart.
 * - `pwd`: the password.
 * - `otp`: a TOTP code (RFC 6238); `recovery`: a single-use recovery code.
 * - `hwk` / `swk`: a passkey signature (RFC 8176: a device-bound key is hardware-secured, a
 *   synced one — WebAuthn backup eligible — is software-secured as far as we can tell).
 * - `uv`: the authenticator verified the user (PIN or biometric; WebAuthn UV flag) — RFC 8176
 *   has no value for "one of them", so it counts as a factor without an amr value of its own.
 */
export type FactorName = 'pwd' | 'otp' | 'recovery' | 'hwk' | 'swk' | 'uv';
export type FactorTimes = Partial<Record<FactorName, number>>;

const FACTOR_NAMES: readonly FactorName[] = ['pwd', 'otp', 'recovery', 'hwk', 'swk', 'uv'];

/** Knowledge (or inherence, for uv) versus possession: two of different kinds make MFA (NIST SP 800-63B §4.2). */
const KIND: Record<FactorName, 'know' | 'have'> = { pwd: 'know', uv: 'know', otp: 'have', recovery: 'have', hwk: 'have', swk: 'have' };

/** Only known names with finite times: the column is JSON and is read defensively. */
export function factorTimesOf(value: unknown): FactorTimes {
  const out: FactorTimes = {};
  if (value === null || typeof value !== 'object') return out;
  for (const name of FACTOR_NAMES) {
    const t = (value as Record<string, unknown>)[name];
    if (typeof t === 'number' && Number.isFinite(t)) out[name] = t;
  }
  return out;
}

export interface Assurance {
  /** RFC 8176 values, in a stable order. */
  amr: string[];
  acr: AcrValue | null;
}

/**
 * The amr and acr of a session that proved `factors`:
 * - amr: `pwd`; `otp` for a TOTP or recovery code (a one-time password either way); `hwk` or
 *   `swk` and `user` (user presence, which every WebAuthn assertion here carries) for a passkey;
 *   `mfa` when factors of two kinds were proved.
 * - acr: phishing-resistant when a passkey is one of two kinds; mfa for any two kinds; password
 *   for a password alone. A passkey without user verification alone reaches no level.
 */
export function assuranceOf(factors: FactorTimes): Assurance {
  const has = (n: FactorName) => factors[n] !== undefined;
  const amr: string[] = [];
  if (has('pwd')) amr.push('pwd');
  if (has('otp') || has('recovery')) amr.push('otp');
  if (has('hwk')) amr.push('hwk');
  if (has('swk')) amr.push('swk');
  const passkey = has('hwk') || has('swk');
  if (passkey) amr.push('user');
  const kinds = new Set(FACTOR_NAMES.filter(has).map((n) => KIND[n]));
  const multi = kinds.size >= 2;
  if (multi) amr.push('mfa');
  const acr = multi ? (passkey ? ACR.phishingResistant : ACR.mfa) : has('pwd') ? ACR.password : null;
  return { amr, acr };
}

/** The factors a sign-in step adds to those a session already had (a later proof replaces the earlier time). */
export function withFactors(factors: FactorTimes, proved: readonly FactorName[], at: Date): FactorTimes {
  const next: FactorTimes = { ...factors };
  for (const name of proved) next[name] = at.getTime();
  return next;
}

/**
 * The level an authorization request needs (OpenID Connect Core §3.1.2.1 `acr_values`, §5.5.1.1
 * an `acr` claim request, Registration §2 the client's `default_acr_values`): the values are
 * alternatives in order of preference, and the levels nest, so the weakest advertised one is
 * what must be reached. Values this server does not advertise are ignored (Core §3.1.2.1:
 * acr_values is voluntary). A client's defaults are also its floor: a request may ask for more,
 * never for less (else editing the URL would switch off a client's MFA requirement). Returns the
 * advertised values to reach, weakest first.
 */
export function requestedAcrValues(acrValues: string | undefined, claimsAcr: { values: readonly string[] } | undefined, clientDefaults: readonly string[] | undefined): AcrValue[] {
  const defaults = ACR_VALUES.filter((v) => (clientDefaults ?? []).includes(v));
  const floor = levelOf(defaults[0]);
  const asked = acrValues !== undefined ? acrValues.split(' ') : claimsAcr?.values ?? [];
  const known = ACR_VALUES.filter((v) => asked.includes(v) && levelOf(v) >= floor);
  return known.length > 0 ? known : defaults;
}

/**
 * The `acr` an ID token reports for a session at `acr` when the request asked for `requested`:
 * the strongest value asked for that the session satisfies (Core §5.5.1.1: an essential acr
 * request with values is answered with one of them), else the session's own.
 */
export function reportedAcr(acr: string | null, requested: readonly string[]): string | null {
  const met = requested.filter((v) => satisfies(acr, v));
  return met.length > 0 ? met[met.length - 1]! : acr;
}
