import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { migrations } from '../migrations/index.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { embeddedKeyEncryptionSecret, lockDataDir } from './db/data-dir.js';
import { openStore, type Store } from './db/database.js';
import { migrate, pendingMigrations } from './db/migrator.js';
import type { ReadinessCheck } from './http/health.js';
import { buildServer } from './http/server.js';
import { createAuditLog, type AuditLog } from './observability/audit.js';
import { createLogger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { ephemeralKeyRing } from './keys/ephemeral.js';
import type { KeyRing } from './keys/keyring.js';
import { DiscoveryRegistry } from './oauth/discovery.js';
import { adminRoutes } from './http/admin.js';
import { registrationRoutes } from './http/registration.js';
import { tokenRoutes } from './http/token.js';
import { applyClientsFile } from './oauth/client-bootstrap.js';
import { ClientRepository } from './store/clients.js';
import { createTokenService } from './token-service.js';

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

    const store = options.store ?? await openStore({
      databaseUrl: config.databaseUrl,
      schema: config.databaseSchema,
      poolMax: config.databasePoolMax,
      dataDir: options.embeddedDataDir ?? config.dataDir,
      logger,
    });
    if (!options.store) cleanups.push(() => store.close());

    const result = await migrate(store.db, migrations);
    if (result.applied.length > 0) logger.info({ applied: result.applied }, 'database migrated');

    const metrics = createMetrics();
    const audit = createAuditLog(logger);
    // TODO(issue 3): the persistent, rotating key manager replaces this in-memory key ring.
    const keys = await ephemeralKeyRing();
    const discovery = new DiscoveryRegistry();
    discovery.contribute(() => ({ issuer: config.issuer }));
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
    ];

    // Endpoint groups: each is a function of the context returning a Fastify plugin.
    const routes: FastifyPluginAsync[] = [];

    // Clients and the M2M token service (token, introspection, revocation, admin, registration).
    if (config.clientsFile) {
      const outcome = await applyClientsFile(config.clientsFile, options.env ?? process.env, new ClientRepository(store.db, store.notifier), audit);
      logger.info({ clients: outcome, file: config.clientsFile }, 'clients file applied');
    }
    const tokenService = await createTokenService(context, cleanups);
    routes.push(tokenRoutes(tokenService, config, audit));
    if (config.adminTokens.length > 0) routes.push(adminRoutes(tokenService, config));
    if (config.initialAccessTokens.length > 0) routes.push(registrationRoutes(tokenService, config));
    const server = await buildServer(config, { store, logger, metrics, audit, clock, readiness, routes });
    // The HTTP server closes first (drains requests), then the services it uses.
    cleanups.push(() => server.close());
    return { context, server, close };
  } catch (err) {
    await close();
    throw err;
  }
}
