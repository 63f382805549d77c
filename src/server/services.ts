import { ACR_BY_NAME } from '../oauth/assurance.js';
import type { ClientAuthDeps } from '../oauth/client-auth/authenticate.js';
import { ClientKeys } from '../oauth/client-auth/client-keys.js';
import { ClientAuthBackoff } from '../oauth/client-auth/failure-backoff.js';
import { addressKey } from '../platform/fixed-window.js';
import { ClientRegistry } from '../oauth/clients/registry.js';
import { ClientCache } from '../oauth/clients/cache.js';
import { ClientRepository } from '../oauth/clients/store.js';
import { CLIENT_USAGE_FLUSH_SECONDS, ClientUsage } from '../oauth/clients/usage.js';
import { ConsentRepository } from '../oauth/consent-store.js';
import type { GrantTypeRegistry } from '../oauth/token-endpoint/registry.js';
import {
  ACCESS_TOKEN_REVOKED_CHANNEL, AccessTokenDenylist, ClientAssertionJtis, GRANT_REVOKED_CHANNEL, RevokedGrantsTable, RevokedSet,
} from '../oauth/revocation-state.js';
import { FamilyRevocation } from '../oauth/refresh-families/revocation.js';
import { SuccessorSealer, type RefreshTokenDeps } from '../oauth/refresh-families/rotation.js';
import { RefreshTokenRepository } from '../oauth/refresh-families/store.js';
import { MAX_ACCESS_TOKEN_TTL, VerifiedAccessTokens } from '../oauth/tokens.js';
import { Cleanup } from '../platform/db/cleanup.js';
import { oauthMetrics } from '../platform/observability/oauth-metrics.js';
import { cachedCountGauge, revocationPropagation } from '../platform/observability/live-gauges.js';
import { refreshMetrics as createRefreshMetrics } from '../platform/observability/refresh-metrics.js';
import { createPasswordHasher } from '../users/passwords.js';
import { serverSessionEndNotifier } from '../users/session-end.js';
import { THROTTLE } from '../users/sign-in.js';
import { UserRepository } from '../users/user-store.js';
import { SessionRepository } from '../users/session-store.js';
import { BrowserSessions } from './http/browser-session.js';
import type { AppContext, Services } from './context.js';
import { endpointUrls } from '../oauth/endpoints.js';
import { ExternalTokens } from '../oauth/trusted-issuers/external-tokens.js';
import { TrustedIssuerRegistry } from '../oauth/trusted-issuers/registry.js';
import { TrustedIssuerRepository } from '../oauth/trusted-issuers/store.js';

/** Worst-case delay for a revocation made on another instance whose NOTIFY was lost. */
const REVOCATION_RELOAD_SECONDS = 30;

export async function createServices(
  context: AppContext, grantTypes: GrantTypeRegistry, cleanups: Array<() => Promise<void> | void>,
): Promise<Services> {
  const { config, store, clock, keys, audit } = context;
  const clients: ClientCache = new ClientCache((id) => repository.find(id), clock, {
    maxEntries: config.clientCacheSize,
    ttlSeconds: config.clientCacheTtl,
  });
  // Changes made here (admin API, registration) reach this instance's cache at once; the
  // NOTIFY tells the other instances.
  const repository = new ClientRepository(store.db, store.notifier, (id) => clients.invalidate(id));
  const registry = new ClientRegistry(repository, audit, clock, { grantTypes, issuer: config.issuer, outbound: context.outbound.policy });
  const unlisten = await clients.listen(store.notifier);
  cleanups.push(unlisten);

  const denylist = new AccessTokenDenylist(store.db);
  const propagation = revocationPropagation(context.metrics.registry);
  const revoked = new RevokedSet(ACCESS_TOKEN_REVOKED_CHANNEL, denylist, store.notifier, () => clock.now(),
    (seconds) => { propagation.observe({ kind: 'access_token' }, seconds); });
  cleanups.push(await revoked.start(REVOCATION_RELOAD_SECONDS, (err) => context.logger.warn({ err }, 'reloading the access token denylist failed')));
  const revokedGrantsTable = new RevokedGrantsTable(store.db, () => clock.now());
  const revokedGrants = new RevokedSet(GRANT_REVOKED_CHANNEL, revokedGrantsTable, store.notifier, () => clock.now(),
    (seconds) => { propagation.observe({ kind: 'grant' }, seconds); });
  cleanups.push(await revokedGrants.start(REVOCATION_RELOAD_SECONDS, (err) => context.logger.warn({ err }, 'reloading the revoked grants failed')));
  const users = new UserRepository(store.db);

  const endpoints = endpointUrls(config.issuer);
  const metrics = oauthMetrics(context.metrics.registry, { perClient: config.metricsPerClient });
  const refreshMetrics = createRefreshMetrics(context.metrics.registry);
  const refreshStore = new RefreshTokenRepository(store.db);
  const sessionStore = new SessionRepository(store.db);
  // Live state on scrape: one COUNT each, cached 15 s; a failed count keeps the last value.
  const now = () => clock.now().getTime();
  cachedCountGauge(context.metrics.registry, {
    name: 'latchkey_sso_sessions', help: 'Live SSO sessions (not ended or expired), counted on scrape at most every 15 s.',
    count: () => sessionStore.countLive(clock.now()), now, onError: (err) => context.logger.warn({ err }, 'counting live SSO sessions failed'),
  });
  cachedCountGauge(context.metrics.registry, {
    name: 'latchkey_refresh_families', help: 'Live refresh token families (not revoked or expired), counted on scrape at most every 15 s.',
    count: () => refreshStore.countLive(clock.now()), now, onError: (err) => context.logger.warn({ err }, 'counting live refresh families failed'),
  });
  const families = new FamilyRevocation({
    families: refreshStore, consents: new ConsentRepository(store.db), revokedGrants, audit, metrics: refreshMetrics, clock,
  });
  const refreshTokens: RefreshTokenDeps = {
    store: refreshStore,
    sealer: new SuccessorSealer(context.keyEncryptionSecrets),
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
    gracePeriod: config.refreshTokenGracePeriod, loginThrottleWindow: Math.max(THROTTLE.windowSeconds, THROTTLE.accountCap.windowSeconds, THROTTLE.secondFactorCap.windowSeconds),
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
  const assertionJtis = new ClientAssertionJtis(store.db, () => clock.now());
  // One cache of remote JWK sets: clients' jwks_uri (private_key_jwt) and trusted issuers' keys.
  const clientKeys = new ClientKeys({
    fetcher: context.outbound, clock, maxBytes: config.jwksUriMaxBytes, maxKeys: config.jwksUriMaxKeys,
    cacheEntries: config.jwksUriCacheSize, cacheBytes: config.jwksUriCacheBytes,
  });
  // Trusted external issuers: a change made here reloads this instance at once, the NOTIFY the others.
  const externalTokens = new ExternalTokens({
    load: async () => (await issuerRepository.list()).map((stored) => stored.config),
    keys: clientKeys, outbound: context.outbound, clock, jtis: assertionJtis, users, metrics: context.metrics.registry,
  });
  const issuerRepository = new TrustedIssuerRepository(store.db, store.notifier, () => externalTokens.reload());
  const trustedIssuers = new TrustedIssuerRegistry(issuerRepository, audit, context.outbound.policy, config.issuer);
  // TRUSTED_ISSUERS_FILE, before anything serves (createServices runs before any route exists).
  if (config.trustedIssuersFile) {
    const outcome = await trustedIssuers.applyFile(config.trustedIssuersFile, { by: 'bootstrap' });
    context.logger.info({ trusted_issuers: outcome, file: config.trustedIssuersFile }, 'trusted issuers file applied');
  }
  cleanups.push(await externalTokens.start(store.notifier, (err) => context.logger.warn({ err }, 'reloading the trusted issuers failed')));
  // Last-used times: collected in memory on the request path, written in one statement a minute
  // (and on close, after the HTTP server has drained: cleanups run in reverse).
  const clientUsage = new ClientUsage(clock, (usage) => repository.recordLastUsed(usage));
  const flushUsage = () => clientUsage.flush().then(
    () => { metrics.clientUsageFlushes.inc({ outcome: 'ok' }); },
    (err: unknown) => { metrics.clientUsageFlushes.inc({ outcome: 'failed' }); context.logger.warn({ err }, 'writing the clients\' last-used times failed'); },
  );
  const usageTimer = setInterval(() => { void flushUsage(); }, CLIENT_USAGE_FLUSH_SECONDS * 1000);
  usageTimer.unref();
  cleanups.push(async () => { clearInterval(usageTimer); await flushUsage(); });
  const authDeps: ClientAuthDeps = {
    clients,
    clientUsage,
    assertionJtis,
    clientKeys,
    externalTokens,
    clock,
    // draft-ietf-oauth-rfc7523bis: the issuer alone, and the token endpoint URL while allowed
    // (never the other endpoints' URLs, which RFC 7523 and RFC 9126 §2 let clients use).
    assertionAudience: {
      issuer: config.issuer,
      tokenEndpoint: config.clientAssertionTokenEndpointAudience ? endpoints.token : undefined,
    },
    maxAssertionLifetime: config.clientAssertionMaxLifetime,
  };
  const accessTokens = { keys, clock, issuer: config.issuer, verified: new VerifiedAccessTokens(config.verifiedTokenCacheSize) };
  const authBackoff = new ClientAuthBackoff(clock, config.clientAuthFailureLimit, config.rateLimitWindow);
  const sessionEnd = serverSessionEndNotifier({
    registry: context.metrics.registry, keys, clock, issuer: config.issuer, db: store.db, clients,
    audit, logger: context.logger, outbound: context.outbound, timeoutSeconds: config.backchannelLogoutTimeout,
  });
  cleanups.push(() => sessionEnd.idle());

  return {
    grantTypes,
    registry,
    clients,
    metrics,
    refreshMetrics,
    endpoints,
    authDeps,
    externalTokens,
    trustedIssuers,
    accessTokens,
    tokenIssuing: { ...accessTokens, accessTokenTtl: config.accessTokenTtl, idTokenTtl: config.idTokenTtl },
    isRevoked: async ({ jti, gid }) => revoked.has(jti) || (gid !== undefined && revokedGrants.has(gid)),
    denylistAccessToken: async (jti, clientId, expiresAt) => { await revoked.add(jti, clientId, expiresAt, 'revoked'); },
    userActive: async (sub) => { const user = await users.findById(sub); return user !== undefined && !user.disabled; },
    users,
    browserSessions: new BrowserSessions(config.issuer, sessionStore, config.sessionIdleTtl, clock, config.mfaRequired === 'off' ? null : ACR_BY_NAME[config.mfaRequired] ?? null),
    hasher: await createPasswordHasher({ ...config.argon2, minLength: config.passwordMinLength }),
    refreshTokens,
    families,
    clientUsage,
    revokeGrant: (grantId, clientId, reason, expiresAt) => families.revokeGrant(grantId, clientId, reason, expiresAt),
    authBackoff,
    sessionEnd,
    runCleanup,
    addCleanupStep: (step) => cleanup.add(step),
    clientAuthFailed(err, fields) {
      metrics.clientAuthFailures.inc({ method: err.method });
      authBackoff.recordFailure(addressKey(fields.ip));
      audit.record('client.auth_failed', { client_id: err.clientId, method: err.method, reason: err.debug, ...fields });
    },
  };
}
