#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError, type Command } from './cli/command.js';
import { clientsCommand } from './cli/clients.js';
import { issuersCommand } from './cli/issuers.js';
import { configCommand } from './cli/config-command.js';
import { keysCommand } from './cli/keys.js';
import { migrateCommand } from './cli/migrate.js';
import { startCommand } from './cli/start.js';
import { usersCommand } from './cli/users.js';
import { auditCommand } from './cli/audit.js';
import { tokensCommand } from './cli/tokens.js';
import { DataDirBusyError, DataDirPermissionError } from './platform/db/data-dir.js';
import { EXIT, EXIT_CODES_HELP, exitWhenDrained, watchOutput } from './cli/output.js';

/** Every subcommand, in the order `latchkey --help` lists them. */
export const commands: Command[] = [startCommand, migrateCommand, configCommand, keysCommand, clientsCommand, issuersCommand, usersCommand, tokensCommand, auditCommand];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: latchkey <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `latchkey <command> --help` for the options of one command.',
    '',
    EXIT_CODES_HELP,
  ].join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`latchkey: unknown command "${name}"\n\n${usage()}\n`);
    return EXIT.usage;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${command.help}\n\n${EXIT_CODES_HELP}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(args);
  } catch (err) {
    // node:util parseArgs reports unknown or malformed options as ERR_PARSE_ARGS_* errors.
    const parseError = err instanceof Error && String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
    if (err instanceof UsageError || err instanceof DataDirBusyError || err instanceof DataDirPermissionError || parseError) {
      process.stderr.write(`latchkey ${name}: ${(err as Error).message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
}

const invokedDirectly = (() => {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

/** Runs the CLI as the process: every byte written reaches the reader before it exits (src/cli/output.ts). */
export function main(argv: string[]): void {
  watchOutput();
  runCli(argv).then(
    (code) => exitWhenDrained(code),
    (err: unknown) => {
      process.stderr.write(`latchkey: ${err instanceof Error ? err.message : String(err)}\n`);
      return exitWhenDrained(EXIT.failed);
    },
  );
}

if (invokedDirectly) main(process.argv.slice(2));
