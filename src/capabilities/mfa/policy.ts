import { ACR, ACR_BY_NAME, levelOf, strongest, type AcrValue, type FactorTimes } from '../../oauth/assurance.js';

/**
 * Who must sign in with what (the MFA policy), and what a session may change. Pure: the facts
 * about an account come in, a level or a yes/no goes out.
 */
export interface MfaPolicy {
  /** MFA_REQUIRED as a level (null: off). */
  floor: AcrValue | null;
  /** MFA_REQUIRED_USERS, lower-cased usernames. */
  requiredUsers: readonly string[];
  /** MFA_RECENT_SIGN_IN, seconds. */
  recentSignInSeconds: number;
}

export function mfaPolicy(config: { mfaRequired: string; mfaRequiredUsers: readonly string[]; mfaRecentSignIn: number }): MfaPolicy {
  return { floor: ACR_BY_NAME[config.mfaRequired] ?? null, requiredUsers: config.mfaRequiredUsers, recentSignInSeconds: config.mfaRecentSignIn };
}

export interface AccountFactors {
  /** A passkey or a confirmed TOTP (recovery codes are a way back in, not a factor to ask for). */
  hasFactor: boolean;
  /** An operator sent the account back through enrolment (latchkey users reset-mfa / require-mfa-enrolment). */
  enrolmentRequired: boolean;
}

/**
 * The level an account must reach at sign-in: MFA_REQUIRED for everyone; the mfa level for
 * MFA_REQUIRED_USERS, for an account an operator sent through enrolment, and for any account
 * with a second factor (enrolling one is asking to be asked for it: a stolen password alone no
 * longer signs in).
 */
export function requiredAcr(username: string, account: AccountFactors, policy: MfaPolicy): AcrValue | null {
  const listed = policy.requiredUsers.includes(username.toLowerCase());
  return strongest(policy.floor, listed || account.enrolmentRequired || account.hasFactor ? ACR.mfa : null);
}

/** The factors beyond the password a session proved (a passkey, a TOTP or a recovery code). */
export function provedSecondFactor(factors: FactorTimes): boolean {
  return factors.hwk !== undefined || factors.swk !== undefined || factors.otp !== undefined || factors.recovery !== undefined;
}

/** Whether a session used a passkey. */
export function provedPasskey(factors: FactorTimes): boolean {
  return factors.hwk !== undefined || factors.swk !== undefined;
}

/**
 * Whether a session may add a factor now: it signed in (or stepped up) within
 * MFA_RECENT_SIGN_IN, with everything the account has — a second factor when it has one. An
 * account without any enrols on the strength of its password alone, right after it (trust on
 * first use: the one moment an attacker holding only the password could do the same, which is
 * why operators reset factors and require enrolment together with a new password).
 */
export function mayEnrol(session: { auth_time: Date; factor_times: FactorTimes }, account: AccountFactors, policy: MfaPolicy, now: Date): boolean {
  const recent = now.getTime() - session.auth_time.getTime() <= policy.recentSignInSeconds * 1000;
  return recent && (!account.hasFactor || provedSecondFactor(session.factor_times));
}

/** The level a step-up page aims at: what the account needs, MFA_REQUIRED, and what the request asked for (an advertised value only). */
export function targetAcr(session: { required_acr: string | null }, policy: MfaPolicy, asked: string | undefined): AcrValue | null {
  return strongest(session.required_acr, policy.floor, asked !== undefined && levelOf(asked) > 0 ? asked : null);
}
