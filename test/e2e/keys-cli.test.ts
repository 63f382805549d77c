import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, latchkey, run, storeEnv, waitFor, type Running } from '../support/process.js';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

/** `latchkey keys list` parsed: kid and state per row. */
function parseList(stdout: string): Array<{ kid: string; alg: string; state: string; line: string }> {
  return stdout.trim().split('\n').slice(1).map((line) => {
    const [kid, alg, state] = line.split(/\s+/);
    return { kid: kid!, alg: alg!, state: state!, line };
  });
}

async function jwksKids(issuer: string): Promise<string[]> {
  const res = await fetch(`${issuer}/jwks`);
  return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
}

describe('latchkey keys', { timeout: 120_000 }, () => {
  const schemas: string[] = [];
  const running: Running[] = [];
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; }
    if (onPostgres) for (const s of schemas) await dropSchema(s);
  });

  function setup(): Record<string, string> {
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-keys-'));
    const schema = uniqueSchema();
    schemas.push(schema);
    // A timer far slower than the test: whatever a running server picks up, it picked up through NOTIFY.
    return { ...storeEnv(dataDir, schema), KEY_CHECK_INTERVAL: '1h' };
  }

  async function startServer(env: Record<string, string>): Promise<{ proc: Running; issuer: string }> {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const proc = run(['start'], { ...env, PORT: String(port), ISSUER: issuer });
    running.push(proc);
    await waitFor(`${issuer}/readyz`);
    return { proc, issuer };
  }

  async function stop(proc: Running): Promise<void> {
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  }

  it('explains itself and rejects bad usage', async () => {
    const env = setup();
    const help = await latchkey(['keys', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('revoke KID [--reason TEXT]');
    expect(await latchkey(['keys'], env)).toMatchObject({ code: 2, stderr: 'latchkey keys: missing subcommand: list, rotate, revoke, reactivate or re-encrypt (see --help)\n' });
    expect(await latchkey(['keys', 'revoke'], env)).toMatchObject({ code: 2, stderr: 'latchkey keys: revoke needs exactly one KID (see --help)\n' });
    expect(await latchkey(['keys', 'rotate', '--alg', 'HS256'], env)).toMatchObject({ code: 2 });
    const empty = await latchkey(['keys', 'list'], env);
    expect(empty).toMatchObject({ code: 0, stdout: 'no signing keys yet (the server creates them on its first start)\n' });
    expect(await latchkey(['keys', 'revoke', 'no-such-kid'], env)).toMatchObject({ code: 2, stderr: 'latchkey keys: there is no signing key with kid no-such-kid\n' });
  });

  it.skipIf(onPostgres)('embedded, local admin socket off: refuses to change keys while the server owns DATA_DIR, works once it stopped', async () => {
    // With the socket on (the default) the command goes through the server: test/e2e/admin-socket.test.ts.
    const env: Record<string, string> = { ...setup(), ADMIN_SOCKET: 'false' };
    let { proc, issuer } = await startServer(env);
    const initial = await jwksKids(issuer);
    expect(initial).toHaveLength(2);

    const refused = await latchkey(['keys', 'rotate'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`latchkey keys: cannot rotate keys: the embedded store in ${env.DATA_DIR}`);
    expect(refused.stderr).toContain(`is in use by a running Latchkey server (pid ${proc.child.pid}). Embedded PGlite is single-process: stop the server, run this command, start it again.`);
    await stop(proc);

    const before = parseList((await latchkey(['keys', 'list'], env)).stdout);
    const active = before.find((k) => k.state === 'active')!.kid;
    const next = before.find((k) => k.state === 'next')!.kid;
    expect(before.map((k) => k.kid).sort()).toEqual([...initial].sort());

    const rotated = await latchkey(['keys', 'rotate'], env);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain(`retired ES256 key ${active}`);
    expect(rotated.stdout).toContain(`activated ES256 key ${next} (warning: published for less than KEY_PUBLISH_AHEAD`);
    const afterRotate = parseList((await latchkey(['keys', 'list'], env)).stdout);
    expect(afterRotate.find((k) => k.kid === active)!.state).toBe('retired');
    expect(afterRotate.find((k) => k.kid === next)!.state).toBe('active');
    expect(afterRotate.filter((k) => k.state === 'next')).toHaveLength(1);

    const revoked = await latchkey(['keys', 'revoke', next, '--reason', 'drill'], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked ES256 key ${next}`);
    const afterRevoke = parseList((await latchkey(['keys', 'list'], env)).stdout);
    expect(afterRevoke.find((k) => k.kid === next)!.line).toMatch(/revoked .* \(drill\)$/);
    const nowActive = afterRevoke.find((k) => k.state === 'active')!.kid;

    ({ proc, issuer } = await startServer(env));
    const served = await jwksKids(issuer);
    expect(served).not.toContain(next);
    expect(served).toContain(nowActive);
    expect(served).toContain(active); // retired: still published
    await stop(proc);
    await expectWrongSecretRefused(env);
  });

  it.runIf(onPostgres)('PostgreSQL: rotates and revokes beside a running server, which reloads at once (NOTIFY)', async () => {
    const env = setup();
    const { proc, issuer } = await startServer(env);
    const before = parseList((await latchkey(['keys', 'list'], env)).stdout);
    const active = before.find((k) => k.state === 'active')!.kid;

    expect((await latchkey(['keys', 'rotate'], env)).code).toBe(0);
    const afterRotate = parseList((await latchkey(['keys', 'list'], env)).stdout);
    const newNext = afterRotate.find((k) => k.state === 'next')!.kid;
    const deadline = Date.now() + 15_000;
    while (!(await jwksKids(issuer)).includes(newNext)) {
      if (Date.now() > deadline) throw new Error('the server did not reload after the rotation');
      await new Promise((r) => setTimeout(r, 100));
    }

    expect((await latchkey(['keys', 'revoke', active, '--reason', 'drill'], env)).code).toBe(0);
    while ((await jwksKids(issuer)).includes(active)) {
      if (Date.now() > deadline) throw new Error('the server still publishes the revoked key');
      await new Promise((r) => setTimeout(r, 100));
    }
    await stop(proc);
    await expectWrongSecretRefused(env);
  });

  /** A server started with another KEY_ENCRYPTION_SECRET stops with a clear message and creates no key. */
  async function expectWrongSecretRefused(env: Record<string, string>): Promise<void> {
    const keysBefore = (await latchkey(['keys', 'list'], env)).stdout;
    const port = await freePort();
    const wrong = await latchkey(['start'], { ...env, PORT: String(port), KEY_ENCRYPTION_SECRET: 'not-the-secret-the-keys-were-made-under-0123' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^latchkey: KEY_ENCRYPTION_SECRET does not decrypt the signing keys in the database \(kid [\w-]+\)\. /);
    expect((await latchkey(['keys', 'list'], env)).stdout).toBe(keysBefore);
  }
});
