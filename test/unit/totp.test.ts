import { describe, expect, it } from 'vitest';
import { Secret, TOTP as Otp } from 'otpauth';
import { matchingStep, TOTP } from '../../src/capabilities/mfa/totp.js';

// RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890", in base32.
const SEED = Secret.fromUTF8('12345678901234567890').base32;
const at = (seconds: number) => new Date(seconds * 1000);
const codeAt = (step: number) => Otp.generate({ secret: Secret.fromBase32(SEED), algorithm: 'SHA1', digits: 6, period: 30, timestamp: step * 30_000 });

describe('TOTP codes (RFC 6238)', () => {
  it('uses the RFC defaults: six digits, 30 s steps, HMAC-SHA-1, ±1 step', () => {
    expect(TOTP).toEqual({ digits: 6, period: 30, algorithm: 'SHA1', window: 1 });
  });

  it('matches the RFC 6238 Appendix B test vectors (their last six digits)', () => {
    expect(SEED).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(matchingStep(SEED, '287082', at(59))).toBe(1); // 94287082
    expect(matchingStep(SEED, '081804', at(1111111109))).toBe(37037036); // 07081804
    expect(matchingStep(SEED, '050471', at(1111111111))).toBe(37037037); // 14050471
  });

  describe('the step window (§5.2: one step either side for clock drift)', () => {
    const now = at(1_700_000_000 + 12); // in the middle of a step
    const step = Math.floor(1_700_000_012 / 30);

    it('accepts the current step and one step before or after, and says which step matched', () => {
      expect(matchingStep(SEED, codeAt(step), now)).toBe(step);
      expect(matchingStep(SEED, codeAt(step - 1), now)).toBe(step - 1);
      expect(matchingStep(SEED, codeAt(step + 1), now)).toBe(step + 1);
    });

    it('refuses codes two or more steps away', () => {
      for (const s of [step - 2, step + 2, step - 10, step + 10]) {
        expect(matchingStep(SEED, codeAt(s), now), `step ${s - step}`).toBeUndefined();
      }
    });

    it('uses the time given, not the machine clock', () => {
      expect(matchingStep(SEED, codeAt(step), at((step + 5) * 30))).toBeUndefined();
      expect(matchingStep(SEED, codeAt(step + 5), at((step + 5) * 30))).toBe(step + 5);
    });

    it('refuses a code of another secret', () => {
      const other = Secret.fromUTF8('abcdefghijabcdefghij').base32;
      const code = codeAt(step);
      expect(matchingStep(other, code, now)).toBeUndefined();
    });
  });

  describe('code format', () => {
    const now = at(59);

    it('accepts the code with spaces in it, as apps display it', () => {
      expect(matchingStep(SEED, '287 082', now)).toBe(1);
      expect(matchingStep(SEED, ' 287082 ', now)).toBe(1);
    });

    it('refuses anything but exactly six digits', () => {
      for (const code of ['', '28708', '2870820', '94287082', '28708a', '+87082', '-87082', '287.08', '２８７０８２', '0x1234']) {
        expect(matchingStep(SEED, code, now), JSON.stringify(code)).toBeUndefined();
      }
    });
  });
});
