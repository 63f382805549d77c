#!/usr/bin/env node
// Process entry for containers and process managers: the same as `latchkey start`.
import { main } from './cli.js';

main(['start', ...process.argv.slice(2)]);
