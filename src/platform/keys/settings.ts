import { z } from 'zod';
import { databaseSettings } from '../db/settings.js';
import { defineSlice, duration, setting, type SliceValues } from '../config/settings.js';
import { SIGNING_ALGS, type SigningAlg } from './keyring.js';

const signingAlgs = z.string().transform((text, ctx) => {
  const algs = text.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const unknown = algs.filter((a) => !(SIGNING_ALGS as readonly string[]).includes(a));
  if (algs.length === 0 || unknown.length > 0) {
    ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${SIGNING_ALGS.join(', ')} (got "${text}")` });
    return z.NEVER;
  }
  if (new Set(algs).size !== algs.length) {
    ctx.addIssue({ code: 'custom', message: `must not name an algorithm twice (got "${text}")` });
    return z.NEVER;
  }
  return algs as SigningAlg[];
});

/** Signing keys: which algorithms, how they rotate, and the secret they are encrypted under at rest. */
export const keySettings = defineSlice({
  name: 'keys',
  settings: {
    keyEncryptionSecret: setting('KEY_ENCRYPTION_SECRET', z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 32`)').optional().describe('Secret from which the key that encrypts signing keys at rest is derived. Required with DATABASE_URL; embedded mode generates one into DATA_DIR/key-encryption-secret (mode 0600).')),
    keyEncryptionSecretPrevious: setting('KEY_ENCRYPTION_SECRET_PREVIOUS', z.string().min(32, 'must be at least 32 characters').optional().describe('While KEY_ENCRYPTION_SECRET is being changed: the old secret, still accepted to decrypt what was sealed under it (signing keys, TOTP secrets, refresh token successors, known-device cookies); everything is encrypted under KEY_ENCRYPTION_SECRET. Drop it after `latchkey keys re-encrypt`.')),
    signingAlgs: setting('SIGNING_ALGS', signingAlgs.default(['ES256']).describe('Comma-separated JWS algorithms to keep a signing key for, one active key each: ES256, EdDSA (Ed25519), RS256, PS256 (RSA 2048). The first is the default.')),
    keyRotationInterval: setting('KEY_ROTATION_INTERVAL', duration(3600, 365 * 86400).default(30 * 86400).describe('How long a key signs before the scheduled rotation promotes the next one.')),
    keyPublishAhead: setting('KEY_PUBLISH_AHEAD', duration(60, 90 * 86400).default(86400).describe('Least time a new key is published in the JWKS before a scheduled rotation lets it sign; at least JWKS_MAX_AGE + KEY_CHECK_INTERVAL.')),
    jwksMaxAge: setting('JWKS_MAX_AGE', duration(0, 7 * 86400).default(3600).describe('Cache-Control max-age of the JWKS and discovery documents.')),
    keyRetireLeeway: setting('KEY_RETIRE_LEEWAY', duration(0, 7 * 86400).default(300).describe('Extra time a retired key stays published after the longest token it can have signed expired (verifier clock skew).')),
    keyCheckInterval: setting('KEY_CHECK_INTERVAL', duration(1, 3600).default(60).describe('Period of the timer that reloads keys and performs due rotations and removals (NOTIFY makes changes visible sooner).')),
  },
  requires: [databaseSettings],
  check: (c) => {
    const problems: string[] = [];
    if (c.databaseUrl && !c.keyEncryptionSecret) {
      problems.push('KEY_ENCRYPTION_SECRET: is required when DATABASE_URL is set (every instance sharing the database must use the same secret)');
    }
    if (c.keyEncryptionSecretPrevious !== undefined && c.keyEncryptionSecret === undefined) {
      problems.push('KEY_ENCRYPTION_SECRET_PREVIOUS: needs KEY_ENCRYPTION_SECRET (the new secret) set beside it');
    }
    if (c.keyEncryptionSecretPrevious !== undefined && c.keyEncryptionSecretPrevious === c.keyEncryptionSecret) {
      problems.push('KEY_ENCRYPTION_SECRET_PREVIOUS: must differ from KEY_ENCRYPTION_SECRET (it is the old secret being replaced)');
    }
    // A new key must be in every verifier's cached JWKS before it signs: an instance that missed
    // the NOTIFY serves the old JWKS until its next check, and a verifier keeps it for max-age.
    if (c.keyPublishAhead < c.jwksMaxAge + c.keyCheckInterval) {
      problems.push(`KEY_PUBLISH_AHEAD: must be at least JWKS_MAX_AGE + KEY_CHECK_INTERVAL (${c.jwksMaxAge + c.keyCheckInterval}s), so every cached JWKS holds a key before it signs`);
    }
    if (c.keyRotationInterval < c.keyPublishAhead) {
      problems.push('KEY_ROTATION_INTERVAL: must not be shorter than KEY_PUBLISH_AHEAD (the next key could never be published long enough)');
    }
    return problems;
  },
});
export type KeySettings = SliceValues<typeof keySettings>;
