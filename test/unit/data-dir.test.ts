import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataDirBusyError, embeddedKeyEncryptionSecret, lockDataDir } from '../../src/platform/db/data-dir.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'latchkey-datadir-'));

describe('embedded data directory', () => {
  it('is owned by one process: a live pid in latchkey.pid refuses a second owner', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'latchkey.pid'), String(process.ppid));
    expect(() => lockDataDir(dir)).toThrow(DataDirBusyError);
    expect(() => lockDataDir(dir)).toThrow(`in use by a running Latchkey server (pid ${process.ppid})`);
  });

  it('takes over a stale pid file and removes it on release', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'latchkey.pid'), '2147483646');
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, 'latchkey.pid'), 'utf8')).toBe(String(process.pid));
    release();
    expect(existsSync(join(dir, 'latchkey.pid'))).toBe(false);
  });

  it('generates the key-encryption secret once, mode 0600, and reuses it', () => {
    const dir = tempDir();
    const first = embeddedKeyEncryptionSecret(dir);
    expect(first.created).toBe(true);
    expect(first.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(join(dir, 'key-encryption-secret')).mode & 0o777).toBe(0o600);
    const second = embeddedKeyEncryptionSecret(dir);
    expect(second).toEqual({ secret: first.secret, created: false });
  });
});
