import type { Capability } from '../../server/context.js';
import { JWT_BEARER, jwtBearerGrant } from './jwt-bearer-grant.js';
import { jwtBearerMetrics } from './metrics.js';

/** Tokens for a JWT of a trusted external issuer, presented by a confidential client (RFC 7523 §2.1). */
export const jwtBearer: Capability = {
  name: 'jwt-bearer',
  grantTypes: [JWT_BEARER],
  register: ({ services, metrics }) => ({
    grants: [jwtBearerGrant({
      ...services.tokenIssuing,
      externalTokens: services.externalTokens,
      userActive: (userId) => services.userActive(userId),
      clients: services.clients,
      metrics: jwtBearerMetrics(metrics.registry),
    })],
  }),
};
