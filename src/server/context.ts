import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { DemoCredentials } from '../capabilities/demo/demo-data.js';
import type { ServerMetadata, DiscoveryRegistry } from '../oauth/discovery.js';
import type { GrantType, TokenGrant } from '../oauth/token-endpoint/grant.js';
import type { Clock } from '../platform/clock.js';
import type { Config } from './config.js';
import type { Store } from '../platform/db/database.js';
import type { Migration } from '../platform/db/migrator.js';
import type { CleanupStep } from '../platform/db/cleanup.js';
import type { Slice } from '../platform/config/settings.js';
import type { KeyRing } from '../platform/keys/keyring.js';
import type { KeyAdministration } from '../platform/keys/administration.js';
import type { KeyEncryptionSecrets } from '../platform/keys/encryption.js';
import type { AuditLog } from '../platform/observability/audit.js';
import type { Metrics } from '../platform/observability/metrics.js';
import type { OutboundFetcher } from '../platform/outbound/fetcher.js';
import type { TrustedIssuerRegistry } from '../oauth/trusted-issuers/registry.js';
import type { ClientAuthBackoff } from '../oauth/client-auth/failure-backoff.js';
import type { ClientAuthDeps, ClientAuthenticationFailed } from '../oauth/client-auth/authenticate.js';
import type { ClientCache } from '../oauth/clients/cache.js';
import type { ClientRegistry } from '../oauth/clients/registry.js';
import type { ClientUsage } from '../oauth/clients/usage.js';
import type { EndpointUrls } from '../oauth/endpoints.js';
import type { FamilyRevocation } from '../oauth/refresh-families/revocation.js';
import type { RefreshTokenDeps } from '../oauth/refresh-families/rotation.js';
import type { GrantTypeRegistry } from '../oauth/token-endpoint/registry.js';
import type { ExternalTokenVerifier } from '../oauth/trusted-issuers/external-token.js';
import type { AccessTokenDeps, TokenIssuingDeps } from '../oauth/tokens.js';
import type { OAuthMetrics } from '../platform/observability/oauth-metrics.js';
import type { RefreshMetrics } from '../platform/observability/refresh-metrics.js';
import type { PasswordHasher } from '../users/passwords.js';
import type { SessionEndNotifier } from '../users/session-end.js';
import type { User, UserRepository } from '../users/user-store.js';
import type { SafeHtml } from '../platform/ui/html.js';
import type { BrowserSessions } from './http/browser-session.js';

/** The whole configuration (src/server/config.ts composes it from every slice). */
export type { Config };

/**
 * The types a capability is written against — types only, so nothing here imports the app and
 * no capability imports src/server/app.ts (the import cycle this module ends).
 */

/** Everything a running Latchkey is made of; built once by `createApp`, shared by HTTP, timers and tests. */
export interface AppContext {
  config: Config;
  store: Store;
  logger: Logger;
  metrics: Metrics;
  audit: AuditLog;
  clock: Clock;
  /** The secret signing keys are encrypted under (configured, or generated in embedded mode). */
  keyEncryptionSecret: string;
  /**
   * That secret and, while it is being changed, KEY_ENCRYPTION_SECRET_PREVIOUS: what everything
   * sealed under the key-encryption secret is opened with (the current one alone seals).
   */
  keyEncryptionSecrets: KeyEncryptionSecrets;
  /** The operator's key actions (list, rotate, revoke, reactivate, re-encrypt); capabilities with sealed values add their table. */
  keyAdministration: KeyAdministration;
  /** Signing keys: the active key per algorithm, verification keys by kid. */
  keys: KeyRing;
  /** Server metadata contributions (RFC 8414); each capability adds its own members. */
  discovery: DiscoveryRegistry;
  /**
   * Every request the server sends where someone else chose (a client's jwks_uri, back-channel
   * logout, later metadata documents and upstream identity providers) goes through this one
   * fetcher; its policy is what client metadata is checked against.
   */
  outbound: OutboundFetcher;
}

/**
 * The services several capabilities share, built once by the composition root: the client
 * registry and its in-memory cache, client authentication, access-token verification and
 * revocation state, refresh families and their revocation, users, password hashing, the
 * session-end notifier and the cleanup job. A capability's own stores and rules live in its
 * folder; this is what would otherwise be built twice.
 */
export interface Services {
  /** The grant types clients may register for (server/capabilities.ts). */
  grantTypes: GrantTypeRegistry;
  registry: ClientRegistry;
  clients: ClientCache;
  metrics: OAuthMetrics;
  refreshMetrics: RefreshMetrics;
  endpoints: EndpointUrls;
  /** Client authentication at every endpoint that takes client credentials. */
  authDeps: ClientAuthDeps;
  /**
   * Tokens of the trusted external issuers (src/oauth/trusted-issuers/): verified, and mapped to
   * a client or user, for workload client authentication, the JWT bearer grant and token exchange.
   */
  externalTokens: ExternalTokenVerifier;
  /** The one way to change trusted issuers (admin API, CLI, TRUSTED_ISSUERS_FILE). */
  trustedIssuers: TrustedIssuerRegistry;
  /** Verifying access tokens, with the one cache of verified signatures (introspection, revocation, UserInfo). */
  accessTokens: Required<AccessTokenDeps>;
  /** Issuing tokens: the keys and the default lifetimes (ACCESS_TOKEN_TTL, ID_TOKEN_TTL). */
  tokenIssuing: TokenIssuingDeps;
  /** An access token is revoked by its own jti, or with the whole grant it came from. */
  isRevoked(claims: { jti: string; gid?: string }): Promise<boolean>;
  /** Denylists one access token's jti until `expiresAt` (RFC 7009). */
  denylistAccessToken(jti: string, clientId: string, expiresAt: Date): Promise<void>;
  /** Whether a user exists and is enabled. */
  userActive(sub: string): Promise<boolean>;
  users: UserRepository;
  hasher: PasswordHasher;
  /** The SSO session of the browser making a request (its cookie), for the sign-in, sign-out and authorization pages. */
  browserSessions: BrowserSessions;
  /** Refresh token families: the store, the successor sealer, the lifetimes. */
  refreshTokens: RefreshTokenDeps;
  /** Revokes refresh families (and their access tokens): one grant, or all of a user, a client, a pair. */
  families: FamilyRevocation;
  /** When each client last authenticated: recorded in memory, flushed every minute and on close (`flush()` writes now). */
  clientUsage: ClientUsage;
  /** A grant's refresh family (same id) and its access tokens, revoked together. */
  revokeGrant(grantId: string, clientId: string, reason: string, expiresAt: Date): Promise<void>;
  /** Failed client authentications per IP (CLIENT_AUTH_FAILURE_LIMIT), for the rate limiter of every endpoint that authenticates clients. */
  authBackoff: ClientAuthBackoff;
  /** Back-channel logout notifications of ended SSO sessions (tests wait for them with idle()). */
  sessionEnd: SessionEndNotifier;
  /** One run of the cleanup job (a timer runs it every CLEANUP_INTERVAL), counted in the metric; the rows removed per table. */
  runCleanup(): Promise<Record<string, number>>;
  /** Adds a step to the cleanup job (a capability's registration.cleanup). */
  addCleanupStep(step: CleanupStep): void;
  /** Records a failed client authentication (metric and audit event). */
  clientAuthFailed(err: ClientAuthenticationFailed, fields: { ip: string; request_id: string; endpoint: string }): void;
}

/**
 * Sign-in beyond the password, as a capability provides it (the mfa capability); without one the
 * password is enough and nothing is added to the sign-in page.
 */
export interface SignInFactors {
  /** The level `user` must reach before a sign-in counts (its MFA policy); null: the password is enough. */
  requiredAcr(user: User, now: Date): Promise<string | null>;
  /**
   * The page a browser goes to when its session must prove more — a second factor after the
   * password, enrolment, or a step-up to `acr` — coming back to `returnTo` (a path here) after.
   */
  stepUpPath(returnTo: string, acr?: string): string;
  /** What the sign-in page shows below its form (passkey sign-in) and the script hashes its CSP must allow. */
  loginPageAddition?(m: { csrf: string; returnTo: string }): { html: SafeHtml; scriptHashes: readonly string[] };
}

/** What a capability's `register` is given: the context, the shared services, and the other capabilities' hooks. */
export interface CapabilityContext extends AppContext {
  services: Services;
  /**
   * The CSP form-action sources of a sign-in form that returns to `returnTo` (a path on this
   * server), as the capability owning that path says; `'self'` when none does.
   */
  formActionsAfterSignIn(returnTo: string): Promise<string[]>;
  /** The sign-in factors a capability registered (Registration.signInFactors), or the password-only default. */
  signInFactors(): SignInFactors;
}

/** What a capability brings to the server. Every member is optional. */
export interface Registration {
  /** Endpoint groups, each a Fastify plugin (the capability's routes.ts). */
  routes?: FastifyPluginAsync[];
  /** Grants the token endpoint serves, built with their dependencies; each must be declared in `grantTypes`. */
  grants?: TokenGrant[];
  /** Server metadata members (RFC 8414 §2) this capability owns; called on every discovery build. */
  discovery?: () => ServerMetadata;
  /** See CapabilityContext.formActionsAfterSignIn: undefined when `returnTo` is not this capability's. */
  formActionsAfterSignIn?(returnTo: string): Promise<string[] | undefined>;
  /**
   * Steps of the cleanup job for the capability's own tables (one bounded statement each,
   * FOR UPDATE SKIP LOCKED), run every CLEANUP_INTERVAL after the shared ones.
   */
  cleanup?: CleanupStep[];
  /** Sign-in beyond the password (at most one capability provides it). */
  signInFactors?: SignInFactors;
  /** Demo data made on this start, shown once on the console (the demo capability). */
  demo?: DemoCredentials;
  /** Stops what the capability started (timers, listeners); called in reverse order on close. */
  close?(): Promise<void> | void;
}

/**
 * One capability: a folder under src/capabilities/ whose index.ts exports this, and one line in
 * src/server/capabilities.ts. `grantTypes` and `migrations` are known before the server runs
 * (client validation and the CLI use them too); `register` runs once per app when `enabled` says so.
 */
export interface Capability {
  name: string;
  grantTypes?: readonly GrantType[];
  /**
   * The capability's settings (its settings.ts): composed into Config by src/server/config.ts,
   * which must list it (test/unit/capabilities.test.ts checks that every capability's is there).
   */
  settings?: Slice;
  /** The capability's own tables: migrations named after the released ones (migrations/), run with them in name order. */
  migrations?: readonly Migration[];
  enabled?(config: Config): boolean;
  register(ctx: CapabilityContext): Registration | Promise<Registration>;
}
