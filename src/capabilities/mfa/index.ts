import type { Capability } from '../../server/context.js';
import { mfaAdminRoutes } from './admin-routes.js';
import { FactorAdministration } from './factor-administration.js';
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
  register: (ctx) => {
    const routes = [];
    // The operator side (factor status, reset, require enrolment): under /admin, only with ADMIN_TOKENS.
    if (ctx.config.adminTokens.length > 0) {
      routes.push(mfaAdminRoutes({
        services: ctx.services, config: ctx.config, admin: new FactorAdministration(ctx.store.db, ctx.audit, ctx.clock),
        async endSessions(userId, fields) {
          const ended = await ctx.services.browserSessions.sessions.endAllOf(userId, ctx.clock.now());
          // Back-channel logout to each session's apps, off the request as the logout page does it.
          for (const session of ended) void ctx.services.sessionEnd.sessionEnded(session, fields);
          return ended.length;
        },
      }));
    }
    return { routes };
  },
};
