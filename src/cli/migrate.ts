import { migrations } from '../../migrations/index.js';
import { lockDataDir } from '../db/data-dir.js';
import { openStore } from '../db/database.js';
import { migrate } from '../db/migrator.js';
import type { Command } from './command.js';
import { configOrExit } from './config-errors.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending database migrations and exit',
  help: `Usage: latchkey migrate

Applies every pending migration under a PostgreSQL advisory lock (safe while other instances
start or run against the same database) and exits. The server also migrates at start-up.
In embedded mode it refuses while a server owns DATA_DIR.`,
  async run() {
    const config = configOrExit();
    const release = config.databaseUrl ? undefined : lockDataDir(config.dataDir);
    try {
      const store = await openStore({ databaseUrl: config.databaseUrl, schema: config.databaseSchema, dataDir: config.dataDir, poolMax: 2 });
      try {
        const result = await migrate(store.db, migrations);
        process.stdout.write(result.applied.length > 0
          ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}\n`
          : `up to date (${result.alreadyApplied.length} migration(s) applied)\n`);
        return 0;
      } finally {
        await store.close();
      }
    } finally {
      release?.();
    }
  },
};
