import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedKeyEncryptionSecret } from '../../src/platform/db/data-dir.js';
import { createApp } from '../../src/server/app.js';
import { LogCapture, testConfig } from '../support/app.js';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';
import { keyManagerOf } from '../support/keys.js';
import { FAST_ARGON2 } from '../support/oidc.js';
import { onPostgres } from '../support/store.js';

const cli = (...args: string[]) => runCliCaptured(['keys', ...args]);
const NEW_SECRET = 'cli-test-the-new-key-encryption-secret-0123456789';

interface KeyView { kid: string; state: string }
const listed = async () => JSON.parse((await cli('list', '--json')).stdout) as KeyView[];
const kidIn = (keys: KeyView[], state: string) => keys.find((k) => k.state === state)!.kid;

describe('latchkey keys reactivate and re-encrypt', () => {
  const shared = sharedStoreForCli('latchkey-cli-keys-');
  beforeAll(async () => {
    shared.setUp();
    await (await shared.open()).close(); // the first start creates the keys
  });
  afterAll(async () => { await shared.tearDown(); });

  it('has --help naming the new subcommands', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    for (const sub of ['reactivate KID', 're-encrypt']) expect(stdout).toContain(`  ${sub}`);
  });

  it('rolls a rotation back: the retired key is active again, the bad one retired, the next key kept', async () => {
    const first = kidIn(await listed(), 'active');
    expect((await cli('rotate')).code).toBe(0);
    const afterRotation = await listed();
    const bad = kidIn(afterRotation, 'active');
    const next = kidIn(afterRotation, 'next');

    const res = await cli('reactivate', first);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(
      `retired ES256 key ${bad} (published until the tokens it signed expire)\nre-activated ES256 key ${first} (it signs again)\n`);
    expect(Object.fromEntries((await listed()).map((k) => [k.kid, k.state]))).toEqual({ [first]: 'active', [bad]: 'retired', [next]: 'next' });

    // A server on the same store signs with it.
    const app = await shared.open();
    try {
      expect(keyManagerOf(app).signingKey().kid).toBe(first);
    } finally {
      await app.close();
    }
    expect(await cli('reactivate', first)).toEqual({ code: 2, stdout: '', stderr: `latchkey keys: signing key ${first} is active: only a retired key (still published) can be re-activated\n` });
    expect((await cli('reactivate', 'no-such-kid')).stderr).toBe('latchkey keys: there is no signing key with kid no-such-kid\n');
    expect((await cli('reactivate')).code).toBe(2);
  });

  it.skipIf(onPostgres)('refuses to change the embedded store while a server runs on it, changing nothing', async () => {
    const before = await listed();
    // A live process other than this one owns DATA_DIR (as a running server does).
    const pidFile = join(process.env.DATA_DIR!, 'latchkey.pid');
    writeFileSync(pidFile, String(process.ppid));
    try {
      const retired = kidIn(before, 'retired');
      for (const args of [['reactivate', retired], ['re-encrypt']]) {
        const res = await cli(...args);
        expect(res.code).toBe(2);
        expect(res.stderr).toMatch(new RegExp(`^latchkey keys: cannot ${args[0]} keys: the embedded store in .* is in use by a running Latchkey server \\(pid ${process.ppid}\\)`));
      }
    } finally {
      rmSync(pidFile, { force: true });
    }
    expect(await listed()).toEqual(before);
  });

  it('re-encrypts under the new secret while the old one is KEY_ENCRYPTION_SECRET_PREVIOUS; then the new secret alone serves', async () => {
    const old = process.env.KEY_ENCRYPTION_SECRET ?? embeddedKeyEncryptionSecret(process.env.DATA_DIR!).secret;
    const activeBefore = kidIn(await listed(), 'active');
    const serve = () => createApp(testConfig({
      ...FAST_ARGON2, KEY_ENCRYPTION_SECRET: NEW_SECRET,
      ...(onPostgres ? { DATABASE_URL: process.env.DATABASE_URL!, DATABASE_SCHEMA: process.env.DATABASE_SCHEMA! } : { DATA_DIR: process.env.DATA_DIR! }),
    }), { logger: new LogCapture().logger });

    process.env.KEY_ENCRYPTION_SECRET = NEW_SECRET;
    // The new secret alone: the stored keys do not decrypt.
    await expect(serve()).rejects.toThrow(/does not decrypt the signing keys/);
    await expect(cli('re-encrypt')).rejects.toThrow(/does not decrypt the signing keys/);

    process.env.KEY_ENCRYPTION_SECRET_PREVIOUS = old;
    const res = await cli('re-encrypt');
    expect(res.code, res.stderr).toBe(0);
    // Three keys hold private material (active, retired, next), all sealed under the old secret; no TOTP factor yet.
    expect(res.stdout).toBe(
      're-encrypted 3 signing_keys row(s) under KEY_ENCRYPTION_SECRET (3 were under KEY_ENCRYPTION_SECRET_PREVIOUS)\n' +
      're-encrypted 0 totp_factors row(s) under KEY_ENCRYPTION_SECRET (0 were under KEY_ENCRYPTION_SECRET_PREVIOUS)\n');

    delete process.env.KEY_ENCRYPTION_SECRET_PREVIOUS;
    const app = await serve();
    try {
      expect(keyManagerOf(app).signingKey().kid).toBe(activeBefore);
    } finally {
      await app.close();
    }
    const audit = await runCliCaptured(['audit', '--json', '--event', 'key.re_encrypted']);
    const events = (JSON.parse(audit.stdout) as { events: Array<{ details: Record<string, unknown> }> }).events;
    expect(events.map((e) => e.details)).toEqual([expect.objectContaining({ by: 'cli', re_encrypted: 3, from_previous: 3 })]);
  });
});
