import { configDocumentation } from '../server/config.js';
import type { Command } from './command.js';
import { configOrExit } from './config-errors.js';

export const configCommand: Command = {
  name: 'config',
  summary: 'list the configuration variables, or check the current environment (--check)',
  help: `Usage: latchkey config [--check]

Without options: prints every environment variable Latchkey reads, its default and meaning.
--check: validates the current environment and prints one line per problem (exit 2), or "ok".`,
  async run(args) {
    if (args.includes('--check')) {
      configOrExit();
      process.stdout.write('ok\n');
      return 0;
    }
    for (const row of configDocumentation()) {
      process.stdout.write(`${row.name}${row.default ? ` (default ${row.default})` : ''}\n    ${row.description}\n`);
    }
    return 0;
  },
};
