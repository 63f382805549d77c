import { z } from 'zod';
import { defineSlice, duration, setting } from '../../platform/config/settings.js';

/** Multi-factor sign-in: who must use a second factor, and how recent a sign-in changing one needs. */
export const mfaSettings = defineSlice({
  name: 'mfa',
  settings: {
    mfaRequired: setting('MFA_REQUIRED', z.enum(['off', 'mfa', 'phishing-resistant']).default('off').describe('The level everyone must sign in at: off (a password is enough unless the account has a second factor), mfa (a second factor: passkey, TOTP or a recovery code) or phishing-resistant (a passkey). A person without a factor that reaches it is led through enrolment right after the password; sessions below it stop counting as signed in.')),
    mfaRequiredUsers: setting('MFA_REQUIRED_USERS', z.string().default('').transform((text) => text.split(',').map((u) => u.trim().toLowerCase()).filter(Boolean)).describe('Usernames (comma-separated) who must sign in with a second factor (the mfa level) whatever MFA_REQUIRED says.')),
    mfaRecentSignIn: setting('MFA_RECENT_SIGN_IN', duration(60, 86400).default(900).describe('Adding or removing a passkey, TOTP or recovery codes on the account page needs a sign-in (with every factor the account has) at most this long ago.')),
  },
});
