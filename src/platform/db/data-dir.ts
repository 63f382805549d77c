import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Embedded PGlite is single-process: while a server runs it owns DATA_DIR. The owner writes
 * its pid into DATA_DIR/latchkey.pid; anyone else (a second server, a CLI command that would
 * open the store) finds a live pid there and stops with a clear message instead of corrupting
 * the database.
 */
export class DataDirBusyError extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`the embedded store in ${dir} is in use by a running Latchkey server (pid ${pid}). ` +
      'Stop it first, or go through the running server; a second process must never open the same data directory.');
    this.name = 'DataDirBusyError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * DATA_DIR holds password hashes, personal data and the key-encryption secret: no other local
 * user may read it. This process cannot make it private (a directory or file owned by another
 * user): the start is refused, naming the path and what to do, rather than run exposed.
 */
export class DataDirPermissionError extends Error {
  constructor(readonly path: string, readonly mode: number, cause: NodeJS.ErrnoException) {
    super(`${path} is mode ${mode.toString(8).padStart(4, '0')} and this process (uid ${process.getuid?.() ?? '?'}) cannot make it private ` +
      `(${cause.code ?? cause.message}). The embedded store must be readable by its owner only: ` +
      'give DATA_DIR and everything in it to the user Latchkey runs as (chown -R), or set its modes yourself (directories 0700, files 0600).');
    this.name = 'DataDirPermissionError';
  }
}

/**
 * Makes `dir` and everything under it private to its owner: directories 0700, files 0600
 * (symbolic links are not followed). The directory itself is tightened first, so nothing below
 * stays reachable while the walk runs. A umask cannot do this for the embedded store: PGlite
 * (Emscripten's NODEFS) sets the modes of the files its initdb writes itself (0666), and a
 * DATA_DIR made beforehand (the Dockerfile's) has whatever mode it was given.
 */
export function makeDataDirPrivate(dir: string): void {
  const root = resolve(dir);
  const tighten = (path: string, mode: number, target: number) => {
    if ((mode & 0o777) === target) return;
    try {
      chmodSync(path, target);
    } catch (err) {
      throw new DataDirPermissionError(path, mode & 0o7777, err as NodeJS.ErrnoException);
    }
  };
  tighten(root, statSync(root).mode, 0o700);
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const entry = join(path, name);
      const stat = lstatSync(entry);
      if (stat.isDirectory()) {
        tighten(entry, stat.mode, 0o700);
        walk(entry);
      } else if (stat.isFile()) {
        tighten(entry, stat.mode, 0o600);
      }
    }
  };
  walk(root);
}

/** The pid of the live process (not this one) that owns the data directory, if any. */
export function dataDirOwner(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(resolve(dir), 'latchkey.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes ownership of the data directory, created 0700 or made private (makeDataDirPrivate),
 * and returns the release function.
 */
export function lockDataDir(dir: string): () => void {
  const path = resolve(dir);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  makeDataDirPrivate(path);
  const pidFile = join(path, 'latchkey.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(pidFile, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(pidFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) throw new DataDirBusyError(path, pid);
      rmSync(pidFile, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not take ownership of ${path}`);
}

/**
 * The embedded store's key-encryption secret: DATA_DIR/key-encryption-secret, 256 random bits,
 * created on first start with mode 0600 and reused after. (With DATABASE_URL the secret must be
 * configured: a generated one could not be shared between instances.)
 */
export function embeddedKeyEncryptionSecret(dir: string): { secret: string; created: boolean } {
  const path = join(resolve(dir), 'key-encryption-secret');
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) chmodSync(path, 0o600);
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length < 32) throw new Error(`${path} does not hold a valid key-encryption secret`);
    return { secret, created: false };
  }
  mkdirSync(resolve(dir), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('base64url');
  const fd = openSync(path, 'wx', 0o600);
  writeSync(fd, `${secret}\n`);
  closeSync(fd);
  return { secret, created: true };
}
