#!/usr/bin/env node
// Process entry for containers and process managers: the same as `latchkey start`.
import { runCli } from './cli.js';

runCli(['start', ...process.argv.slice(2)]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`latchkey: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
