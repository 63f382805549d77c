import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { migrations } from '../../migrations/index.js';
import { systemClock, type Clock } from '../platform/clock.js';
import type { Config } from './config.js';
import { embeddedKeyEncryptionSecret, lockDataDir } from '../platform/db/data-dir.js';
import { openStore, type Store } from '../platform/db/database.js';
import { migrate, pendingMigrations } from '../platform/db/migrator.js';
import type { ReadinessCheck } from './http/health.js';
import { buildServer } from './http/server.js';
import { buildMetricsServer } from './http/metrics.js';
import { createAuditLog, type AuditLog } from '../platform/observability/audit.js';
import { AuditEventRepository } from '../platform/observability/audit-event-store.js';
import { enforceAuditRetention } from '../platform/observability/audit-retention.js';
import { createLogger } from '../platform/observability/logger.js';
import { createMetrics, type Metrics } from '../platform/observability/metrics.js';
import { instrumentStore } from '../platform/observability/db-metrics.js';
import type { KeyRing } from '../platform/keys/keyring.js';
import { KeyManager } from '../platform/keys/manager.js';
import { discoveryRoutes, jwksRoutes } from './http/jwks-and-discovery.js';
import { DiscoveryRegistry } from '../oauth/discovery.js';
import { loginRoutes } from '../capabilities/login/routes.js';
import { serverSessionEndNotifier, type SessionEndNotifier } from '../users/session-end.js';
import { createPasswordHasher } from '../users/passwords.js';
import { adminRoutes } from '../capabilities/admin/routes.js';
import { registrationRoutes } from '../capabilities/registration/routes.js';
import { tokenRoutes } from './http/token-endpoints.js';
import { authorizeRoutes, interactionFormActions } from '../capabilities/authorization-code/routes.js';
import { applyClientsFile } from '../oauth/clients/clients-file.js';
import { ClientRepository } from '../oauth/clients/store.js';
import { createTokenService, type TokenService } from './services.js';
import { createDemoData, DEMO_CLIENT_ID, isLoopbackIssuer, type DemoCredentials } from '../capabilities/demo/demo-data.js';
import { tryRoutes } from '../capabilities/demo/routes.js';

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

export interface App {
  context: AppContext;
  server: FastifyInstance;
  /** Set on the start that created the demo data (embedded store, first start): shown once. */
  demo?: DemoCredentials;
  /** With METRICS_PORT: the listener serving /metrics only (not started; `latchkey start` listens on HOST:METRICS_PORT). */
  metricsServer?: FastifyInstance;
  /** The token service (tests run its cleanup job and revocations directly). */
  tokenService: TokenService;
  /** Back-channel logout notifications (tests wait for them with idle()). */
  sessionEnd: SessionEndNotifier;
  /** Stops background work, closes the HTTP server (draining in-flight requests) and the store. */
  close(): Promise<void>;
}

export interface AppOptions {
  logger?: Logger;
  clock?: Clock;
  /** The environment CLIENTS_FILE secrets are read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** An already-open store (tests); otherwise opened from the configuration. */
  store?: Store;
  /** Embedded mode only: `memory` for an in-memory PGlite (tests). */
  embeddedDataDir?: 'memory';
  /** Route plugins added after the built-in ones (tests probe the server with these). */
  extraRoutes?: FastifyPluginAsync[];
}

/**
 * The composition root: opens the store (taking ownership of DATA_DIR in embedded mode),
 * migrates under the advisory lock, builds the services and the HTTP server.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try { await cleanup(); } catch (err) { logger.warn({ err }, 'cleanup failed'); }
    }
  };

  try {
    const embedded = !config.databaseUrl;
    const onDisk = embedded && !options.store && options.embeddedDataDir !== 'memory';
    if (onDisk) cleanups.push(lockDataDir(config.dataDir));

    let keyEncryptionSecret = config.keyEncryptionSecret;
    if (!keyEncryptionSecret) {
      if (onDisk) {
        const generated = embeddedKeyEncryptionSecret(config.dataDir);
        if (generated.created) logger.info({ dataDir: config.dataDir }, 'generated a key-encryption secret in the data directory (mode 0600)');
        keyEncryptionSecret = generated.secret;
      } else if (embedded) {
        keyEncryptionSecret = 'in-memory-store-key-encryption-secret-not-persisted';
      } else {
        throw new Error('KEY_ENCRYPTION_SECRET is required with DATABASE_URL');
      }
    }

    const openedStore = options.store ?? await openStore({
      databaseUrl: config.databaseUrl,
      schema: config.databaseSchema,
      poolMax: config.databasePoolMax,
      dataDir: options.embeddedDataDir ?? config.dataDir,
      logger,
    });
    if (!options.store) cleanups.push(() => openedStore.close());

    const result = await migrate(openedStore.db, migrations);
    if (result.applied.length > 0) logger.info({ applied: result.applied }, 'database migrated');

    const metrics = createMetrics();
    // From here on every query is timed (latchkey_db_query_duration_seconds) and the pool observed.
    const store = instrumentStore(openedStore, metrics.registry);
    const auditEvents = new AuditEventRepository(store.db);
    const audit = createAuditLog(logger, {
      clock, registry: metrics.registry, sink: (events) => auditEvents.insertMany(events), excludeFromSink: config.auditDbExclude,
    });
    cleanups.push(() => audit.close());
    const retention = setInterval(() => {
      enforceAuditRetention(auditEvents, clock, config.auditRetention).then(
        (n) => { if (n > 0) logger.info({ deleted: n }, 'audit events past retention deleted'); },
        (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'audit retention failed'),
      );
    }, 3600_000);
    retention.unref();
    cleanups.push(() => clearInterval(retention));
    // Signing keys: loaded (a wrong KEY_ENCRYPTION_SECRET stops the start here), created on the
    // very first start, rotated by the timer, reloaded on NOTIFY from other instances.
    const keys = new KeyManager({ config, store, secret: keyEncryptionSecret, clock, logger, audit, metrics });
    await keys.start();
    cleanups.push(() => keys.stop());
    const discovery = new DiscoveryRegistry();
    discovery.contribute(() => ({ issuer: config.issuer }));
    discovery.contribute(keys.discoveryMetadata(config.issuer));
    const context: AppContext = { config, store, logger, metrics, audit, clock, keyEncryptionSecret, keys, discovery };

    const readiness: ReadinessCheck[] = [
      {
        name: 'database',
        async check() {
          await store.db.selectFrom('latchkey_migrations').select('name').limit(1).execute();
          return { ok: true };
        },
      },
      {
        name: 'migrations',
        async check() {
          const pending = await pendingMigrations(store.db, migrations);
          return pending.length === 0 ? { ok: true } : { ok: false, detail: `pending: ${pending.join(', ')}` };
        },
      },
      { name: 'signing_keys', check: async () => keys.readiness() },
    ];

    // Endpoint groups: each is a function of the context returning a Fastify plugin.
    const hasher = await createPasswordHasher({ ...config.argon2, minLength: config.passwordMinLength });
    const routes: FastifyPluginAsync[] = [
      jwksRoutes(keys, config.jwksMaxAge),
      discoveryRoutes(discovery, config.jwksMaxAge),
    ];

    // Clients and the M2M token service (token, introspection, revocation, admin, registration).
    if (config.clientsFile) {
      const outcome = await applyClientsFile(config.clientsFile, options.env ?? process.env, new ClientRepository(store.db, store.notifier), audit);
      logger.info({ clients: outcome, file: config.clientsFile }, 'clients file applied');
    }
    const tokenService = await createTokenService(context, cleanups);
    routes.push(tokenRoutes(tokenService, config, audit, metrics));
    routes.push(authorizeRoutes(context, tokenService));
    const sessionEnd = serverSessionEndNotifier(context, tokenService.clients);
    cleanups.push(() => sessionEnd.idle());
    routes.push(loginRoutes(context, hasher, { formActionsFor: interactionFormActions(context, tokenService), clients: tokenService.clients, sessionEnd }));
    // A newcomer's first start on the embedded store: demo user, demo client, try-it page.
    // Only where a newcomer tries it: the embedded store and an issuer on this machine — never a
    // deployment with a public issuer, which would get a live demo account.
    const demoWanted = !config.databaseUrl && config.demo && isLoopbackIssuer(config.issuer);
    const demo = demoWanted
      ? await createDemoData(context, { users: tokenService.users, registry: tokenService.registry, hasher })
      : undefined;
    if (demoWanted && await tokenService.clients.get(DEMO_CLIENT_ID)) routes.push(tryRoutes(config));
    if (config.adminTokens.length > 0) routes.push(adminRoutes(tokenService, config, auditEvents));
    if (config.initialAccessTokens.length > 0) routes.push(registrationRoutes(tokenService, config, metrics));
    const server = await buildServer(config, { store, logger, metrics, audit, clock, readiness, routes: [...routes, ...(options.extraRoutes ?? [])] });
    // The HTTP server closes first (drains requests), then the services it uses.
    cleanups.push(() => server.close());
    const shown = demo ? { demo } : {};
    if (config.metricsPort !== undefined) {
      const metricsServer = await buildMetricsServer(config, { logger, registry: metrics.registry });
      cleanups.push(() => metricsServer.close());
      return { context, server, tokenService, sessionEnd, metricsServer, close, ...shown };
    }
    return { context, server, tokenService, sessionEnd, close, ...shown };
  } catch (err) {
    await close();
    throw err;
  }
}
