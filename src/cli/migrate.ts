import type { Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { withCliStore } from './store.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending database migrations and exit',
  help: `Usage: latchkey migrate

Applies every pending migration under a PostgreSQL advisory lock (safe while other instances
start or run against the same database) and exits. The server also migrates at start-up.
In embedded mode it refuses while a server owns DATA_DIR.`,
  async run() {
    const config = configOrExit();
    return withCliStore(config, async (_store, result) => {
      process.stdout.write(result.applied.length > 0
        ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}\n`
        : `up to date (${result.alreadyApplied.length} migration(s) applied)\n`);
      return 0;
    });
  },
};
