import type { Logger } from 'pino';
import pino from 'pino';
import { MIGRATIONS as migrations } from '../server/capabilities.js';
import { systemClock } from '../platform/clock.js';
import type { Config } from '../server/config.js';
import { lockDataDir } from '../platform/db/data-dir.js';
import { openStore, type Store } from '../platform/db/database.js';
import { migrate, type MigrationResult } from '../platform/db/migrator.js';
import { createAuditLog, type AuditLog } from '../platform/observability/audit.js';
import { createLogger } from '../platform/observability/logger.js';
import { AuditEventRepository } from '../platform/observability/audit-event-store.js';

/**
 * Opens the store for one CLI command, migrated, and closes it after. In embedded mode the
 * command takes ownership of DATA_DIR first, so it refuses (DataDirBusyError, naming the pid)
 * while a server runs instead of opening the database from a second process.
 */
export async function withCliStore<T>(config: Config, fn: (store: Store, migrated: MigrationResult) => Promise<T>): Promise<T> {
  const release = config.databaseUrl ? undefined : lockDataDir(config.dataDir);
  try {
    const store = await openStore({ databaseUrl: config.databaseUrl, schema: config.databaseSchema, dataDir: config.dataDir, poolMax: 2 });
    try {
      const migrated = await migrate(store.db, migrations);
      return await fn(store, migrated);
    } finally {
      await store.close();
    }
  } finally {
    release?.();
  }
}

/**
 * An audit log for one CLI command, like the server's: its lines go to stderr (stdout is the
 * command's answer) and its events to audit_events, written before the command returns.
 */
export async function withCliAudit<T>(config: Config, store: Store, fn: (audit: AuditLog, logger: Logger) => Promise<T>): Promise<T> {
  const logger = createLogger(config.logLevel, pino.destination(2));
  const auditEvents = new AuditEventRepository(store.db);
  const audit = createAuditLog(logger, { clock: systemClock, sink: (events) => auditEvents.insertMany(events) });
  try {
    return await fn(audit, logger);
  } finally {
    await audit.close();
  }
}
