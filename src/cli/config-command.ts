import { configDocumentation } from '../server/config.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { printJson } from './output.js';

export const configCommand: Command = {
  name: 'config',
  summary: 'list the configuration variables, or check the current environment (--check)',
  help: `Usage: latchkey config [--json | --check]

Without options: prints every environment variable Latchkey reads, its default and meaning.
--json: the same as one JSON document, an array of {"name", "default", "description"}
("default" is "" when there is none). Never the environment's values.
--check: validates the current environment and prints one line per problem (exit 2), or "ok".`,
  async run(args) {
    if (args.includes('--check')) {
      if (args.includes('--json')) throw new UsageError('--json lists the variables; --check validates them: give one');
      configOrExit();
      process.stdout.write('ok\n');
      return 0;
    }
    if (args.includes('--json')) {
      printJson(configDocumentation());
      return 0;
    }
    for (const row of configDocumentation()) {
      process.stdout.write(`${row.name}${row.default ? ` (default ${row.default})` : ''}\n    ${row.description}\n`);
    }
    return 0;
  },
};
