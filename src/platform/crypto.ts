import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh 256-bit random value, base64url (43 characters): codes, tokens, session ids, secrets. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** How such a value is stored: its SHA-256 (a fast hash is right for server-generated 256-bit values). */
export function sha256(value: string): Buffer {
  // The one-shot hash (Node ≥ 20.12): no Hash object per call; it runs on every client authentication.
  return hash('sha256', value, 'buffer');
}

/** Constant-time equality of two strings of any length (compares their SHA-256). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}
