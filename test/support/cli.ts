import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { createApp, type App } from '../../src/server/app.js';
import { runCli } from '../../src/cli.js';
import { LogCapture, testConfig } from './app.js';
import { FAST_ARGON2 } from './oidc.js';
import { dropSchema, onPostgres, uniqueSchema } from './store.js';

/** `latchkey …` run in this process, with what it writes to stdout and stderr captured. */
export async function runCliCaptured(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => { stdout += String(chunk); return true; });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { stderr += String(chunk); return true; });
  try {
    const code = await runCli(args);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/**
 * One store for an app opened in this process and the CLI run in this process, one after the
 * other: a DATA_DIR on disk, or a schema of its own on PostgreSQL. `setUp` points the CLI's
 * environment at it (in beforeAll), `tearDown` restores the environment and removes the store.
 */
export function sharedStoreForCli(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const schema = uniqueSchema();
  const saved = { ...process.env };
  const env: Record<string, string> = onPostgres
    ? { DATABASE_SCHEMA: schema, KEY_ENCRYPTION_SECRET: 'cli-test-key-encryption-secret-0123456789' }
    : { DATA_DIR: dir };
  // What setUp adds to the CLI's environment, the servers `open` makes get too.
  let extras: Record<string, string> = {};
  return {
    open: async (): Promise<App> => createApp(testConfig({ ...FAST_ARGON2, ...extras, ...env, ...(onPostgres ? { DATABASE_URL: process.env.DATABASE_URL! } : {}) }), { logger: new LogCapture().logger }),
    setUp(extra: Record<string, string> = {}): void {
      extras = extra;
      Object.assign(process.env, { LOG_LEVEL: 'silent', ...extra, ...env });
    },
    async tearDown(): Promise<void> {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
      if (onPostgres) await dropSchema(schema);
    },
  };
}
