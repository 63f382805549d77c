import { adminApiEnabled } from '../../platform/config/admin-access.js';
import type { Capability } from '../../server/context.js';
import { trustedIssuerRoutes } from './routes.js';

/**
 * The operator's side of trusted external issuers (src/oauth/trusted-issuers/): the admin API
 * under /admin/trusted-issuers; on only with ADMIN_TOKENS. The verifier itself is a shared
 * service (TRUSTED_ISSUERS_FILE is applied there, before anything serves).
 */
export const trustedIssuers: Capability = {
  name: 'trusted-issuers',
  enabled: (config) => adminApiEnabled(config),
  register: (ctx) => ({ routes: [trustedIssuerRoutes(ctx.services.trustedIssuers, ctx.config)] }),
};
