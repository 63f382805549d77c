import type { Capability } from '../../server/context.js';
import { mfaFactors } from './migrations.js';
import { mfaSettings } from './settings.js';

/**
 * Multi-factor sign-in: passkeys (WebAuthn), TOTP and recovery codes; the MFA policy and
 * step-up (acr); the account page where a person manages them and their apps.
 */
export const mfa: Capability = {
  name: 'mfa',
  settings: mfaSettings,
  migrations: [mfaFactors],
  register: () => ({}),
};
