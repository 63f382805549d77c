import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
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

  it('makes a pre-existing DATA_DIR private: directories 0700, files 0600, links not followed', () => {
    const dir = tempDir();
    chmodSync(dir, 0o755); // as the Dockerfile creates it
    mkdirSync(join(dir, 'pglite/pg_wal'), { recursive: true, mode: 0o755 });
    writeFileSync(join(dir, 'pglite/PG_VERSION'), '17', { mode: 0o644 });
    writeFileSync(join(dir, 'pglite/pg_wal/000000010000000000000001'), '', { mode: 0o666 });
    chmodSync(join(dir, 'pglite/pg_wal/000000010000000000000001'), 0o666);
    const outside = join(tempDir(), 'elsewhere');
    writeFileSync(outside, '', { mode: 0o644 });
    symlinkSync(outside, join(dir, 'link'));
    const release = lockDataDir(dir);
    const mode = (p: string) => lstatSync(join(dir, p)).mode & 0o777;
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect([mode('pglite'), mode('pglite/pg_wal')]).toEqual([0o700, 0o700]);
    expect([mode('pglite/PG_VERSION'), mode('pglite/pg_wal/000000010000000000000001'), mode('latchkey.pid')]).toEqual([0o600, 0o600, 0o600]);
    expect(statSync(outside).mode & 0o777).toBe(0o644);
    release();
  });

  it.runIf(process.getuid?.() === 0)('refuses, naming the path, a DATA_DIR it cannot make private (owned by another user)', () => {
    const dir = tempDir();
    chmodSync(dir, 0o755); // root's: the unprivileged child below cannot chmod it
    const module = new URL('../../src/platform/db/data-dir.ts', import.meta.url).pathname;
    const script = `import(${JSON.stringify(module)}).then((m) => { try { m.lockDataDir(${JSON.stringify(dir)}); console.log('locked'); } catch (e) { console.log(e.name + ': ' + e.message); } })`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: new URL('../../', import.meta.url).pathname, uid: 65534, gid: 65534, encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: '/tmp' },
    });
    expect(child.stdout).toContain(`DataDirPermissionError: ${dir} is mode 0755 and this process (uid 65534) cannot make it private (EPERM).`);
    expect(child.stdout).toContain('chown -R');
    expect(statSync(dir).mode & 0o777).toBe(0o755);
  });
});
