import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../platform/clock.js';
import type { Config } from './config.js';
import { embeddedKeyEncryptionSecret, lockDataDir } from '../platform/db/data-dir.js';
import { openStore, type Store } from '../platform/db/database.js';
import { migrate, pendingMigrations } from '../platform/db/migrator.js';
import type { ReadinessCheck } from './http/health.js';
import { buildServer } from './http/server.js';
import { buildMetricsServer } from './http/metrics.js';
import { createAuditLog } from '../platform/observability/audit.js';
import { AuditEventRepository } from '../platform/observability/audit-event-store.js';
import { enforceAuditRetention } from '../platform/observability/audit-retention.js';
import { createLogger } from '../platform/observability/logger.js';
import { createMetrics } from '../platform/observability/metrics.js';
import { createOutboundFetcher } from '../platform/outbound/fetcher.js';
import { instrumentStore } from '../platform/observability/db-metrics.js';
import { KeyAdministration } from '../platform/keys/administration.js';
import { KeyManager } from '../platform/keys/manager.js';
import { discoveryRoutes, jwksRoutes } from './http/jwks-and-discovery.js';
import { DiscoveryRegistry } from '../oauth/discovery.js';
import type { DemoCredentials } from '../capabilities/demo/demo-data.js';
import { GrantTypeRegistry, type GrantRegistry } from '../oauth/token-endpoint/registry.js';
import { CAPABILITIES, GRANT_TYPES, MIGRATIONS as migrations } from './capabilities.js';
import type { AppContext, Capability, CapabilityContext, Registration, Services, SignInFactors } from './context.js';
import { tokenEndpointMetadata, tokenEndpointRoutes } from './http/token-endpoint.js';
import { createServices } from './services.js';
import { createAdminSocket, type AdminSocket } from './http/admin-socket.js';
import { adminSocketEnabled } from '../platform/config/admin-access.js';
import { applyClientsFile } from '../oauth/clients/clients-file.js';
import { ClientRepository } from '../oauth/clients/store.js';

export interface App {
  context: AppContext;
  server: FastifyInstance;
  /** Set on the start that created the demo data (embedded store, first start): shown once. */
  demo?: DemoCredentials;
  /** With METRICS_PORT: the listener serving /metrics only (not started; `latchkey start` listens on HOST:METRICS_PORT). */
  metricsServer?: FastifyInstance;
  /** Embedded store on disk with ADMIN_SOCKET: the admin API on DATA_DIR/admin.sock (not started; `latchkey start` listens on it). */
  adminSocket?: AdminSocket;
  /** The shared services (tests run the cleanup job, revocations and wait for back-channel logout through them). */
  services: Services;
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
  /** The capabilities to register instead of the table's (tests of the registration contract). */
  capabilities?: readonly Capability[];
  /** Route plugins added after the built-in ones (tests probe the server with these). */
  extraRoutes?: FastifyPluginAsync[];
}

/** Sign-in when no capability adds factors: the password is enough. */
const PASSWORD_ONLY: SignInFactors = {
  requiredAcr: async () => null,
  stepUpPath: (returnTo) => returnTo,
};

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
    // While KEY_ENCRYPTION_SECRET changes, the previous one still opens what it sealed (keys re-encrypt ends that).
    const keyEncryptionSecrets = { current: keyEncryptionSecret, previous: config.keyEncryptionSecretPrevious };
    const keys = new KeyManager({ config, store, secret: keyEncryptionSecrets, clock, logger, audit, metrics });
    await keys.start();
    cleanups.push(() => keys.stop());
    const discovery = new DiscoveryRegistry();
    discovery.contribute(() => ({ issuer: config.issuer }));
    discovery.contribute(keys.discoveryMetadata(config.issuer));
    const outbound = createOutboundFetcher(config, { registry: metrics.registry });
    const keyAdministration = new KeyAdministration(keys, audit);
    const context: AppContext = {
      config, store, logger, metrics, audit, clock, keyEncryptionSecret, keyEncryptionSecrets, keyAdministration, keys, discovery, outbound,
    };

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
      {
        // Other instances' changes (clients, keys, revocations) reach this one by NOTIFY: not
        // ready while the LISTEN connection is down (asking re-opens it at once).
        name: 'notifications',
        check: async () => (await store.ensureListening()) ? { ok: true } : { ok: false, detail: 'LISTEN connection down; reconnecting' },
      },
    ];

    // Clients declared in CLIENTS_FILE, before anything serves them.
    const capabilities = options.capabilities ?? CAPABILITIES;
    const grantTypes = options.capabilities ? new GrantTypeRegistry(capabilities.flatMap((c) => c.grantTypes ?? [])) : GRANT_TYPES;
    if (config.clientsFile) {
      const outcome = await applyClientsFile(config.clientsFile, options.env ?? process.env, new ClientRepository(store.db, store.notifier), audit, { grantTypes, issuer: config.issuer, outbound: outbound.policy });
      logger.info({ clients: outcome, file: config.clientsFile }, 'clients file applied');
    }
    const services = await createServices(context, grantTypes, cleanups);

    // Each enabled capability registers what it brings (src/server/capabilities.ts).
    const registrations: Registration[] = [];
    const capabilityContext: CapabilityContext = {
      ...context,
      services,
      async formActionsAfterSignIn(returnTo) {
        for (const registration of registrations) {
          const sources = await registration.formActionsAfterSignIn?.(returnTo);
          if (sources) return sources;
        }
        return ["'self'"];
      },
      signInFactors() {
        return registrations.find((r) => r.signInFactors)?.signInFactors ?? PASSWORD_ONLY;
      },
    };
    const grants: GrantRegistry = new GrantTypeRegistry();
    for (const capability of capabilities) {
      if (capability.enabled && !capability.enabled(config)) continue;
      const registration = await capability.register(capabilityContext);
      registrations.push(registration);
      if (registration.close) cleanups.push(() => registration.close?.());
      for (const step of registration.cleanup ?? []) services.addCleanupStep(step);
      for (const grant of registration.grants ?? []) {
        if (!capability.grantTypes?.some((declared) => declared.grantType === grant.grantType)) {
          throw new Error(`capability ${capability.name} serves the ${grant.grantType} grant without declaring it in grantTypes`);
        }
        grants.add(grant);
      }
    }
    // What clients may register is what /token serves: a grant type declared and not served
    // (its capability off, or not registering it) would let clients register a grant nobody serves.
    const unserved = grantTypes.grantTypes().filter((type) => !grants.has(type));
    if (unserved.length > 0) throw new Error(`grant types declared but not served: ${unserved.join(', ')}`);
    discovery.contribute(tokenEndpointMetadata(services, grants));
    for (const registration of registrations) if (registration.discovery) discovery.contribute(registration.discovery);
    const routes: FastifyPluginAsync[] = [
      jwksRoutes(keys, config.jwksMaxAge),
      discoveryRoutes(discovery, config.jwksMaxAge),
      tokenEndpointRoutes(context, services, grants),
      ...registrations.flatMap((r) => r.routes ?? []),
    ];
    const demo = registrations.find((r) => r.demo)?.demo;
    const server = await buildServer(config, { store, logger, metrics, audit, clock, readiness, routes: [...routes, ...(options.extraRoutes ?? [])] });
    // The HTTP server closes first (drains requests), then the services it uses.
    cleanups.push(() => server.close());
    const shown: { demo?: DemoCredentials; adminSocket?: AdminSocket } = demo ? { demo } : {};
    if (onDisk && adminSocketEnabled(config)) {
      const adminSocket = createAdminSocket(server, config.dataDir);
      // Closed before the HTTP server (cleanups run in reverse): the file is gone when the server stops.
      cleanups.push(() => adminSocket.close());
      shown.adminSocket = adminSocket;
    }
    if (config.metricsPort !== undefined) {
      const metricsServer = await buildMetricsServer(config, { logger, registry: metrics.registry, readiness });
      cleanups.push(() => metricsServer.close());
      return { context, server, services, metricsServer, close, ...shown };
    }
    return { context, server, services, close, ...shown };
  } catch (err) {
    await close();
    throw err;
  }
}
