import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli.js';
import { EXIT, EXIT_CODES_HELP } from '../../src/cli/output.js';
import { runCliCaptured } from '../support/cli.js';

describe('exit codes, documented', () => {
  it('every `latchkey <command> --help` ends with the exit codes, and so does `latchkey --help`', async () => {
    for (const command of commands) {
      expect(await runCliCaptured([command.name, '--help'])).toEqual({ code: 0, stdout: `${command.help}\n\n${EXIT_CODES_HELP}\n`, stderr: '' });
    }
    const top = await runCliCaptured(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout.endsWith(`\n\n${EXIT_CODES_HELP}\n`)).toBe(true);
  });

  it('the help and the README name the same codes as EXIT', () => {
    const codes = Object.values(EXIT).map(String);
    expect([...EXIT_CODES_HELP.matchAll(/^ {2}(\d+) /gm)].map((m) => m[1])).toEqual(codes);
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('| Code | Meaning |'));
    expect([...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| (\d+) \|/gm)].map((m) => m[1])).toEqual(codes);
  });
});
