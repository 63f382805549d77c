import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { DemoCredentials } from '../capabilities/demo/demo-data.js';
import type { ServerMetadata, DiscoveryRegistry } from '../oauth/discovery.js';
import type { GrantType, TokenGrant } from '../oauth/token-endpoint/grant.js';
import type { Clock } from '../platform/clock.js';
import type { Config } from '../platform/config/config.js';
import type { Store } from '../platform/db/database.js';
import type { KeyRing } from '../platform/keys/keyring.js';
import type { AuditLog } from '../platform/observability/audit.js';
import type { Metrics } from '../platform/observability/metrics.js';
import type { Services } from './services.js';

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
  /** Signing keys: the active key per algorithm, verification keys by kid. */
  keys: KeyRing;
  /** Server metadata contributions (RFC 8414); each capability adds its own members. */
  discovery: DiscoveryRegistry;
}

/** What a capability's `register` is given: the context, the shared services, and the other capabilities' hooks. */
export interface CapabilityContext extends AppContext {
  services: Services;
  /**
   * The CSP form-action sources of a sign-in form that returns to `returnTo` (a path on this
   * server), as the capability owning that path says; `'self'` when none does.
   */
  formActionsAfterSignIn(returnTo: string): Promise<string[]>;
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
  /** Demo data made on this start, shown once on the console (the demo capability). */
  demo?: DemoCredentials;
  /** Stops what the capability started (timers, listeners); called in reverse order on close. */
  close?(): Promise<void> | void;
}

/**
 * One capability: a folder under src/capabilities/ whose index.ts exports this, and one line in
 * src/server/capabilities.ts. `grantTypes` is known before the server runs (client validation
 * uses it, the CLI too); `register` runs once per app when `enabled` says so.
 */
export interface Capability {
  name: string;
  grantTypes?: readonly GrantType[];
  enabled?(config: Config): boolean;
  register(ctx: CapabilityContext): Registration | Promise<Registration>;
}
