import { randomInt } from 'node:crypto';

/**
 * User codes (RFC 8628 §6.1): short, typed by a person on another device, so case-insensitive,
 * from an alphabet without vowels (no words) and without look-alikes (no 0/O, 1/I/L confusion
 * besides L itself, which has no digit to be confused with here), shown in two groups of four.
 * 20 consonants, 8 characters: 20⁸ ≈ 2.56 × 10¹⁰ codes (34.6 bits) — the RFC's own example.
 */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_LENGTH = 8;
export const USER_CODE_SPACE = USER_CODE_ALPHABET.length ** USER_CODE_LENGTH;

/** A fresh user code, normalised (no separator). */
export function newUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/** As shown and in verification_uri_complete: `BCDF-GHJK`. */
export function displayUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/**
 * What a person typed, as stored: upper case, separators (spaces, dashes) dropped (RFC 8628
 * §6.1: "case-insensitive … ignore … punctuation"); undefined when it cannot be a user code.
 */
export function normaliseUserCode(typed: unknown): string | undefined {
  if (typeof typed !== 'string' || typed.length > 32) return undefined;
  const code = typed.toUpperCase().replace(/[\s-]/g, '');
  if (code.length !== USER_CODE_LENGTH) return undefined;
  for (const c of code) if (!USER_CODE_ALPHABET.includes(c)) return undefined;
  return code;
}
