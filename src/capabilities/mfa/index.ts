import { isIP } from 'node:net';
import { adminApiEnabled } from '../../platform/config/admin-access.js';
import type { Capability } from '../../server/context.js';
import { ACR_VALUES } from '../../oauth/assurance.js';
import { accountFactors } from './account-factors.js';
import { mfaAdminRoutes } from './admin-routes.js';
import { FactorAdministration } from './factor-administration.js';
import { mfaMetrics } from './metrics.js';
import { mfaFactors } from './migrations.js';
import { passkeyGetForm } from './pages.js';
import { PASSKEY_SCRIPT_HASH } from './passkey-script.js';
import { expiredChallengesBatch, Passkeys } from './passkeys.js';
import { mfaPolicy, requiredAcr } from './policy.js';
import { RecoveryCodes } from './recovery-codes.js';
import { factorPath, mfaRoutes } from './routes.js';
import { mfaSettings } from './settings.js';
import { TotpFactors } from './totp.js';

/**
 * Multi-factor sign-in: passkeys (WebAuthn), TOTP and recovery codes; the MFA policy and
 * step-up (acr); the account page where a person manages them and their apps.
 */
export const mfa: Capability = {
  name: 'mfa',
  settings: mfaSettings,
  migrations: [mfaFactors],
  register: (ctx) => {
    const { config, store, clock, audit } = ctx;
    const issuer = new URL(config.issuer);
    // WebAuthn §5.1.3: the RP ID is the issuer's host name (a registrable suffix of the origin), checked against the origin by the browser and here.
    const passkeys = new Passkeys(store.db, { rpId: issuer.hostname, rpName: issuer.host, origin: issuer.origin });
    const totp = new TotpFactors(store.db, ctx.keyEncryptionSecrets, issuer.host);
    // `keys re-encrypt` re-seals the TOTP secrets too.
    ctx.keyAdministration.addSealedTable(totp);
    const recovery = new RecoveryCodes(store.db);
    const admin = new FactorAdministration(store.db, audit, clock);
    const policy = mfaPolicy(config);
    const metrics = mfaMetrics(ctx.metrics.registry);
    const routes = [mfaRoutes(ctx, { passkeys, totp, recovery, admin, policy, metrics })];
    // The operator side (factor status, reset, require enrolment): under /admin, with ADMIN_TOKENS or the local admin socket.
    if (adminApiEnabled(config)) {
      routes.push(mfaAdminRoutes({
        services: ctx.services, config, admin,
        async endSessions(userId, fields) {
          const ended = await ctx.services.browserSessions.sessions.endAllOf(userId, clock.now());
          // Back-channel logout to each session's apps, off the request as the logout page does it.
          for (const session of ended) void ctx.services.sessionEnd.sessionEnded(session, fields);
          return ended.length;
        },
      }));
    }
    return {
      routes,
      signInFactors: {
        requiredAcr: async (user) => requiredAcr(user.username, await accountFactors(store.db, user.id), policy),
        stepUpPath: factorPath,
        // WebAuthn §5.1.3: an RP ID is a domain, never an IP address: on an IP issuer there is no passkey to offer.
        ...(isIP(issuer.hostname.replace(/^\[|\]$/g, '')) ? {} : { loginPageAddition: ({ csrf, returnTo }: { csrf: string; returnTo: string }) => ({
          html: passkeyGetForm({ csrf, returnTo, options: '/login/passkey/options', verify: '/login/passkey', autofill: true, label: 'Sign in with a passkey' }),
          scriptHashes: [PASSKEY_SCRIPT_HASH],
        }) }),
      },
      // OpenID Connect Discovery §3: the levels an RP may ask for with acr_values.
      discovery: () => ({ acr_values_supported: [...ACR_VALUES], claims_supported: ['acr', 'amr', 'auth_time'] }),
      cleanup: [{ name: 'webauthn_challenges', batch: expiredChallengesBatch }],
    };
  },
};
