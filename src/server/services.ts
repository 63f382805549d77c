import type { AppContext } from './app.js';
import { ClientAuthenticationFailed, ClientKeys, supportedAuthMethods, type ClientAuthDeps } from '../oauth/client-auth/authenticate.js';
import { ClientAuthBackoff } from '../oauth/client-auth/failure-backoff.js';
import { addressKey } from '../platform/fixed-window.js';
import { ClientRegistry } from '../oauth/clients/registry.js';
import type { GrantDeps } from '../oauth/token-endpoint/grant.js';
import { supportedGrantTypes } from '../oauth/token-endpoint/registry.js';
import type { IntrospectionDeps } from '../capabilities/introspection/introspect.js';
import type { RevocationDeps } from '../capabilities/revocation/revoke.js';
import { oauthMetrics, type OAuthMetrics } from '../platform/observability/oauth-metrics.js';
import { ClientCache } from '../oauth/clients/cache.js';
import { ClientRepository } from '../oauth/clients/store.js';
import { AuthorizationCodeRepository } from '../capabilities/authorization-code/code-store.js';
import { AuthorizationRequestRepository } from '../capabilities/authorization-code/request-store.js';
import {
  ACCESS_TOKEN_REVOKED_CHANNEL, AccessTokenDenylist, ClientAssertionJtis, GRANT_REVOKED_CHANNEL, RevokedGrantsTable, RevokedSet,
} from '../oauth/revocation-state.js';
import { UserRepository } from '../users/user-store.js';
import { THROTTLE } from '../users/sign-in.js';
import { Cleanup } from '../platform/db/cleanup.js';
import { ConsentRepository } from '../oauth/consent-store.js';
import { RefreshTokenRepository } from '../oauth/refresh-families/store.js';
import { FamilyRevocation } from '../oauth/refresh-families/revocation.js';
import { OFFLINE_ACCESS, SuccessorSealer, type RefreshTokenDeps } from '../oauth/refresh-families/rotation.js';
import { refreshMetrics as createRefreshMetrics, type RefreshMetrics } from '../platform/observability/refresh-metrics.js';
import type { UserInfoDeps } from '../capabilities/userinfo/userinfo.js';
import { MAX_ACCESS_TOKEN_TTL, VerifiedAccessTokens } from '../oauth/tokens.js';
import { PROMPT_VALUES, RESPONSE_MODES } from '../capabilities/authorization-code/authorization-request.js';
import { CLAIMS_SUPPORTED, SCOPE_CLAIMS } from '../oauth/claims.js';
import { KNOWN_RESPONSE_TYPES } from '../oauth/client-metadata.js';
import { CODE_CHALLENGE_METHODS } from '../capabilities/authorization-code/pkce.js';

/** Worst-case delay for a revocation made on another instance whose NOTIFY was lost. */
const REVOCATION_RELOAD_SECONDS = 30;

/** The URLs of the endpoints this capability serves, under the issuer. */
export function endpointUrls(issuer: string) {
  return {
    authorization: `${issuer}/authorize`,
    pushedAuthorizationRequest: `${issuer}/par`,
    userinfo: `${issuer}/userinfo`,
    token: `${issuer}/token`,
    introspection: `${issuer}/introspect`,
    revocation: `${issuer}/revoke`,
    registration: `${issuer}/register`,
  };
}

/**
 * The machine-to-machine token service, built once from the context: the client registry and
 * its in-memory cache, client authentication, grants, introspection and revocation, wired to
 * the store. The HTTP plugins (src/http/token.ts, admin.ts, registration.ts) use only this.
 */
export interface TokenService {
  registry: ClientRegistry;
  clients: ClientCache;
  metrics: OAuthMetrics;
  endpoints: ReturnType<typeof endpointUrls>;
  authDeps: ClientAuthDeps;
  tokenDeps: ClientAuthDeps & GrantDeps;
  introspectionDeps: IntrospectionDeps;
  revocationDeps: RevocationDeps;
  userInfoDeps: UserInfoDeps;
  /** Authorization codes and pending authorization requests (the /authorize side uses them too). */
  codes: AuthorizationCodeRepository;
  requests: AuthorizationRequestRepository;
  users: UserRepository;
  /** Failed client authentications per IP (CLIENT_AUTH_FAILURE_LIMIT), for the rate limiter of every endpoint that authenticates clients. */
  authBackoff: ClientAuthBackoff;
  refreshMetrics: RefreshMetrics;
  /** Revokes refresh families (and their access tokens): one grant, or all of a user, a client, a pair. */
  families: FamilyRevocation;
  /** One run of the cleanup job (a timer runs it every CLEANUP_INTERVAL), counted in the metric; the rows removed per table. */
  runCleanup(): Promise<Record<string, number>>;
  /** Records a failed client authentication (metric and audit event). */
  clientAuthFailed(err: ClientAuthenticationFailed, fields: { ip: string; request_id: string; endpoint: string }): void;
}

export async function createTokenService(context: AppContext, cleanups: Array<() => Promise<void> | void>): Promise<TokenService> {
  const { config, store, clock, keys, audit } = context;
  const clients: ClientCache = new ClientCache((id) => repository.find(id), clock, {
    maxEntries: config.clientCacheSize,
    ttlSeconds: config.clientCacheTtl,
  });
  // Changes made here (admin API, registration) reach this instance's cache at once; the
  // NOTIFY tells the other instances.
  const repository = new ClientRepository(store.db, store.notifier, (id) => clients.invalidate(id));
  const registry = new ClientRegistry(repository, audit, clock);
  const unlisten = await clients.listen(store.notifier);
  cleanups.push(unlisten);

  const denylist = new AccessTokenDenylist(store.db);
  const revoked = new RevokedSet(ACCESS_TOKEN_REVOKED_CHANNEL, denylist, store.notifier, () => clock.now());
  cleanups.push(await revoked.start(REVOCATION_RELOAD_SECONDS, (err) => context.logger.warn({ err }, 'reloading the access token denylist failed')));
  const revokedGrantsTable = new RevokedGrantsTable(store.db, () => clock.now());
  const revokedGrants = new RevokedSet(GRANT_REVOKED_CHANNEL, revokedGrantsTable, store.notifier, () => clock.now());
  cleanups.push(await revokedGrants.start(REVOCATION_RELOAD_SECONDS, (err) => context.logger.warn({ err }, 'reloading the revoked grants failed')));
  const assertionJtis = new ClientAssertionJtis(store.db, () => clock.now());
  const codes = new AuthorizationCodeRepository(store.db);
  const requests = new AuthorizationRequestRepository(store.db);
  const users = new UserRepository(store.db);

  const endpoints = endpointUrls(config.issuer);
  const metrics = oauthMetrics(context.metrics.registry, { perClient: config.metricsPerClient });
  const refreshMetrics = createRefreshMetrics(context.metrics.registry);
  const refreshStore = new RefreshTokenRepository(store.db);
  const families = new FamilyRevocation({
    families: refreshStore, consents: new ConsentRepository(store.db), revokedGrants, audit, metrics: refreshMetrics, clock,
  });
  const refreshTokens: RefreshTokenDeps = {
    store: refreshStore,
    sealer: new SuccessorSealer(context.keyEncryptionSecret),
    lifetimes: {
      idle: config.refreshTokenIdleTtl, absolute: config.refreshTokenAbsoluteTtl,
      publicIdle: config.refreshTokenPublicIdleTtl, publicAbsolute: config.refreshTokenPublicAbsoluteTtl,
    },
    gracePeriod: config.refreshTokenGracePeriod,
  };

  // Expired state is deleted in bounded batches; none is ever needed past its expiry. Redeemed
  // codes and revoked families are kept as long as a token issued from them can live, so a late
  // replay still revokes and a revoked family's tokens still answer invalid_grant.
  const cleanup = new Cleanup(store.db, {
    batchSize: config.cleanupBatchSize, codeRetention: MAX_ACCESS_TOKEN_TTL, revokedFamilyRetention: MAX_ACCESS_TOKEN_TTL,
    gracePeriod: config.refreshTokenGracePeriod, loginThrottleWindow: THROTTLE.windowSeconds,
  });
  const runCleanup = async () => {
    const removed = await cleanup.run(clock.now());
    for (const [table, n] of Object.entries(removed)) if (n > 0) refreshMetrics.cleanupDeleted.inc({ table }, n);
    return removed;
  };
  const cleanupTimer = setInterval(() => {
    runCleanup().catch((err: unknown) => context.logger.warn({ err }, 'the cleanup job failed'));
  }, config.cleanupInterval * 1000);
  cleanupTimer.unref();
  cleanups.push(() => clearInterval(cleanupTimer));
  const authDeps: ClientAuthDeps = {
    clients,
    assertionJtis,
    clientKeys: new ClientKeys(),
    clock,
    // RFC 7523 §3 (3): the token endpoint URL or the issuer; the other endpoints that
    // authenticate clients are accepted too, as each is "the authorization server".
    // RFC 9126 §2: the pushed authorization request endpoint URL too.
    assertionAudiences: [config.issuer, endpoints.token, endpoints.introspection, endpoints.revocation, endpoints.pushedAuthorizationRequest],
  };
  // One cache of verified access-token signatures, shared by introspection, revocation and UserInfo.
  const accessTokenDeps = { keys, clock, issuer: config.issuer, verified: new VerifiedAccessTokens(config.verifiedTokenCacheSize) };
  // A grant's refresh family (same id) and its access tokens are revoked together (src/refresh-family-revocation.ts).
  const revokeGrant = (grantId: string, clientId: string, reason: string, expiresAt: Date) => families.revokeGrant(grantId, clientId, reason, expiresAt);
  const tokenDeps = {
    ...authDeps, ...accessTokenDeps, accessTokenTtl: config.accessTokenTtl, idTokenTtl: config.idTokenTtl, codes, users, revokeGrant, refreshTokens,
  };
  // An access token is revoked by its own jti, or with the whole grant it came from.
  const isRevoked = async ({ jti, gid }: { jti: string; gid?: string }) => revoked.has(jti) || (gid !== undefined && revokedGrants.has(gid));
  const userActive = async (sub: string) => { const user = await users.findById(sub); return user !== undefined && !user.disabled; };
  const introspectionDeps: IntrospectionDeps = { ...authDeps, ...accessTokenDeps, isRevoked, userActive };
  const revocationDeps: RevocationDeps = {
    ...authDeps,
    ...accessTokenDeps,
    denylistAccessToken: (jti, clientId, expiresAt) => revoked.add(jti, clientId, expiresAt, 'revoked'),
    findRefreshToken: (hash) => refreshStore.find(hash),
    revokeGrant,
  };
  const userInfoDeps: UserInfoDeps = { ...accessTokenDeps, clients, users, isRevoked };

  const authBackoff = new ClientAuthBackoff(clock, config.clientAuthFailureLimit, config.rateLimitWindow);
  const authMethods = supportedAuthMethods();
  context.discovery.contribute(() => ({
    authorization_endpoint: endpoints.authorization,
    response_types_supported: [...KNOWN_RESPONSE_TYPES],
    response_modes_supported: [...RESPONSE_MODES],
    code_challenge_methods_supported: [...CODE_CHALLENGE_METHODS],
    // RFC 9207
    authorization_response_iss_parameter_supported: true,
    prompt_values_supported: [...PROMPT_VALUES],
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    pushed_authorization_request_endpoint: endpoints.pushedAuthorizationRequest,
    require_pushed_authorization_requests: false,
    userinfo_endpoint: endpoints.userinfo,
    claims_supported: CLAIMS_SUPPORTED,
    claims_parameter_supported: false,
    scopes_supported: ['openid', ...Object.keys(SCOPE_CLAIMS), OFFLINE_ACCESS],
    token_endpoint: endpoints.token,
    grant_types_supported: supportedGrantTypes(),
    token_endpoint_auth_methods_supported: authMethods.methods,
    token_endpoint_auth_signing_alg_values_supported: authMethods.signingAlgs,
    introspection_endpoint: endpoints.introspection,
    introspection_endpoint_auth_methods_supported: authMethods.methods.filter((m) => m !== 'none'),
    introspection_endpoint_auth_signing_alg_values_supported: authMethods.signingAlgs,
    // RFC 9701 §7: the algorithms a client may register as introspection_signed_response_alg and be served.
    introspection_signing_alg_values_supported: accessTokenDeps.keys.algorithms(),
    revocation_endpoint: endpoints.revocation,
    revocation_endpoint_auth_methods_supported: authMethods.methods,
    revocation_endpoint_auth_signing_alg_values_supported: authMethods.signingAlgs,
    ...(config.initialAccessTokens.length > 0 ? { registration_endpoint: endpoints.registration } : {}),
  }));

  return {
    registry,
    clients,
    metrics,
    endpoints,
    authDeps,
    tokenDeps,
    introspectionDeps,
    revocationDeps,
    userInfoDeps,
    codes,
    requests,
    users,
    authBackoff,
    refreshMetrics,
    families,
    runCleanup,
    clientAuthFailed(err, fields) {
      metrics.clientAuthFailures.inc({ method: err.method });
      authBackoff.recordFailure(addressKey(fields.ip));
      audit.record('client.auth_failed', { client_id: err.clientId, method: err.method, reason: err.debug, ...fields });
    },
  };
}
