import { migrations } from '../../migrations/index.js';
import type { Config } from '../config.js';
import { lockDataDir } from '../db/data-dir.js';
import { openStore, type Store } from '../db/database.js';
import { migrate, type MigrationResult } from '../db/migrator.js';

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
