import { describe, expect, it } from 'vitest';
import { ACR, assuranceOf, levelOf, reportedAcr, requestedAcrValues, satisfies, withFactors } from '../../src/oauth/assurance.js';
import { mayEnrol, mfaPolicy, requiredAcr, targetAcr } from '../../src/capabilities/mfa/policy.js';

const T = 1_800_000_000_000;

describe('amr and acr of what a session proved (RFC 8176, OpenID Connect Core §2)', () => {
  it('a password alone: pwd at the password level', () => {
    expect(assuranceOf({ pwd: T })).toEqual({ amr: ['pwd'], acr: ACR.password });
  });
  it('password and TOTP: pwd otp mfa at the mfa level', () => {
    expect(assuranceOf({ pwd: T, otp: T })).toEqual({ amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa });
  });
  it('a recovery code is a one-time password (otp)', () => {
    expect(assuranceOf({ pwd: T, recovery: T })).toEqual({ amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa });
  });
  it('password and a device-bound passkey: phishing-resistant, hwk and user presence', () => {
    expect(assuranceOf({ pwd: T, hwk: T })).toEqual({ amr: ['pwd', 'hwk', 'user', 'mfa'], acr: ACR.phishingResistant });
  });
  it('a synced passkey with user verification alone: swk, multi-factor, phishing-resistant', () => {
    expect(assuranceOf({ swk: T, uv: T })).toEqual({ amr: ['swk', 'user', 'mfa'], acr: ACR.phishingResistant });
  });
  it('a passkey without user verification alone reaches no level', () => {
    expect(assuranceOf({ hwk: T })).toEqual({ amr: ['hwk', 'user'], acr: null });
  });
  it('a later proof replaces the time of the earlier one and keeps the others', () => {
    expect(withFactors({ pwd: 1, otp: 2 }, ['otp', 'hwk'], new Date(5))).toEqual({ pwd: 1, otp: 5, hwk: 5 });
  });
});

describe('levels', () => {
  it('nest: phishing-resistant satisfies mfa and password; unknown values are no level', () => {
    expect(satisfies(ACR.phishingResistant, ACR.mfa)).toBe(true);
    expect(satisfies(ACR.password, ACR.mfa)).toBe(false);
    expect(satisfies(null, null)).toBe(true);
    expect(satisfies(null, ACR.password)).toBe(false);
    expect(levelOf('urn:other')).toBe(0);
  });
  it('acr_values: advertised values asked for, weakest first; else the claims request; else the client default (Core §3.1.2.1, §5.5.1.1)', () => {
    expect(requestedAcrValues(`urn:other ${ACR.phishingResistant} ${ACR.mfa}`, undefined, undefined)).toEqual([ACR.mfa, ACR.phishingResistant]);
    expect(requestedAcrValues(undefined, { values: [ACR.phishingResistant] }, [ACR.mfa])).toEqual([ACR.phishingResistant]);
    expect(requestedAcrValues(undefined, undefined, [ACR.mfa])).toEqual([ACR.mfa]);
    expect(requestedAcrValues('urn:unknown', undefined, undefined)).toEqual([]);
  });
  it('a client\'s default_acr_values are its floor: a request may ask for more, never for less or for nothing known', () => {
    expect(requestedAcrValues('urn:unknown', undefined, [ACR.mfa])).toEqual([ACR.mfa]);
    expect(requestedAcrValues(ACR.password, undefined, [ACR.mfa])).toEqual([ACR.mfa]);
    expect(requestedAcrValues(`${ACR.password} ${ACR.phishingResistant}`, undefined, [ACR.mfa])).toEqual([ACR.phishingResistant]);
    expect(requestedAcrValues(undefined, { values: ['urn:unknown'] }, [ACR.mfa])).toEqual([ACR.mfa]);
  });
  it('reports the strongest value asked for that the session meets, else its own', () => {
    expect(reportedAcr(ACR.phishingResistant, [ACR.password, ACR.mfa])).toBe(ACR.mfa);
    expect(reportedAcr(ACR.password, [ACR.mfa])).toBe(ACR.password);
    expect(reportedAcr(ACR.mfa, [])).toBe(ACR.mfa);
  });
});

describe('the MFA policy', () => {
  const off = mfaPolicy({ mfaRequired: 'off', mfaRequiredUsers: ['carol'], mfaRecentSignIn: 900 });
  const everyone = mfaPolicy({ mfaRequired: 'phishing-resistant', mfaRequiredUsers: [], mfaRecentSignIn: 900 });
  const none = { hasFactor: false, enrolmentRequired: false };
  it('off: a password is enough for an account without factors', () => {
    expect(requiredAcr('alice', none, off)).toBeNull();
  });
  it('an account with a factor, listed in MFA_REQUIRED_USERS (any case), or sent through enrolment needs the mfa level', () => {
    expect(requiredAcr('alice', { hasFactor: true, enrolmentRequired: false }, off)).toBe(ACR.mfa);
    expect(requiredAcr('Carol', none, off)).toBe(ACR.mfa);
    expect(requiredAcr('alice', { hasFactor: false, enrolmentRequired: true }, off)).toBe(ACR.mfa);
  });
  it('MFA_REQUIRED=phishing-resistant holds for everyone, factors or not', () => {
    expect(requiredAcr('alice', none, everyone)).toBe(ACR.phishingResistant);
    expect(requiredAcr('alice', { hasFactor: true, enrolmentRequired: true }, everyone)).toBe(ACR.phishingResistant);
  });
  it('the step-up page aims at the strongest of the account, the policy and an advertised level asked for', () => {
    expect(targetAcr({ required_acr: ACR.mfa }, off, ACR.phishingResistant)).toBe(ACR.phishingResistant);
    expect(targetAcr({ required_acr: null }, off, 'urn:other')).toBeNull();
    expect(targetAcr({ required_acr: null }, everyone, undefined)).toBe(ACR.phishingResistant);
  });
  it('enrolment: within MFA_RECENT_SIGN_IN, and with a second factor proved when the account has one', () => {
    const now = new Date(T);
    const recent = { auth_time: new Date(T - 899_000), factor_times: { pwd: T } };
    expect(mayEnrol(recent, none, off, now)).toBe(true);
    expect(mayEnrol({ ...recent, auth_time: new Date(T - 901_000) }, none, off, now)).toBe(false);
    expect(mayEnrol(recent, { hasFactor: true, enrolmentRequired: false }, off, now)).toBe(false);
    expect(mayEnrol({ ...recent, factor_times: { pwd: T, otp: T } }, { hasFactor: true, enrolmentRequired: false }, off, now)).toBe(true);
  });
});
