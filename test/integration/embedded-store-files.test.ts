import { chmodSync, mkdtempSync, readdirSync, lstatSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.js';
import { LogCapture, testConfig } from '../support/app.js';

/** Every entry under `dir` whose mode lets anyone but its owner in, as `path mode`. */
function exposed(dir: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const entry = join(path, name);
      const stat = lstatSync(entry);
      if (stat.mode & 0o077) found.push(`${entry.slice(dir.length)} ${(stat.mode & 0o777).toString(8)}`);
      if (stat.isDirectory()) walk(entry);
    }
  };
  walk(dir);
  return found;
}

describe('the embedded store on disk', () => {
  // Always PGlite on disk, whatever DATABASE_URL says: this is about the files it writes.
  it('is private to its owner: a pre-existing DATA_DIR of mode 0755 ends 0700, every file 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-store-files-'));
    chmodSync(dir, 0o755); // as the Dockerfile creates it
    const app = await createApp(testConfig({ DATA_DIR: dir }), { logger: new LogCapture('silent').logger });
    try {
      expect(lstatSync(dir).mode & 0o777).toBe(0o700);
      expect(exposed(dir)).toEqual([]);
    } finally {
      await app.close();
    }
    // What the shutdown wrote (the checkpoint, WAL) too.
    expect(exposed(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});
