import type { Capability } from '../../server/context.js';
import { AUTHORIZATION_CODE, authorizationCodeGrant } from './authorization-code-grant.js';
import { PROMPT_VALUES, RESPONSE_MODES } from './authorization-request.js';
import { AuthorizationCodeRepository } from './code-store.js';
import { authorizationCodeClaims, optionalCodeChallenge } from './migrations.js';
import { CODE_CHALLENGE_METHODS } from './pkce.js';
import { AuthorizationRequestRepository } from './request-store.js';
import { authorizeRoutes, interactionFormActions } from './routes.js';
import { KNOWN_RESPONSE_TYPES } from '../../oauth/client-metadata.js';
import { authorizationCodeSettings } from './settings.js';

/** The authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636), consent, PAR (RFC 9126) and form_post. */
export const authorizationCode: Capability = {
  name: 'authorization-code',
  settings: authorizationCodeSettings,
  grantTypes: [AUTHORIZATION_CODE],
  migrations: [authorizationCodeClaims, optionalCodeChallenge],
  register(ctx) {
    const { services } = ctx;
    const codes = new AuthorizationCodeRepository(ctx.store.db);
    const requests = new AuthorizationRequestRepository(ctx.store.db);
    return {
      grants: [authorizationCodeGrant({
        ...services.tokenIssuing, codes, users: services.users, refreshTokens: services.refreshTokens, revokeGrant: services.revokeGrant,
        pkceFailures: services.metrics.pkceFailures, refreshMetrics: services.refreshMetrics,
      })],
      routes: [authorizeRoutes(ctx, { codes, requests })],
      formActionsAfterSignIn: interactionFormActions(requests, ctx.clock),
      discovery: () => ({
        authorization_endpoint: services.endpoints.authorization,
        response_types_supported: [...KNOWN_RESPONSE_TYPES],
        response_modes_supported: [...RESPONSE_MODES],
        code_challenge_methods_supported: [...CODE_CHALLENGE_METHODS],
        // RFC 9207
        authorization_response_iss_parameter_supported: true,
        prompt_values_supported: [...PROMPT_VALUES],
        // OpenID Connect Core §5.5: read here, carried by PAR, the interaction and the code.
        claims_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        pushed_authorization_request_endpoint: services.endpoints.pushedAuthorizationRequest,
        require_pushed_authorization_requests: false,
      }),
    };
  },
};
