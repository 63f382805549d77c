import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../support/app.js';
import { basic, eventually, form, FORM_HEADERS } from '../support/clients.js';
import { runCliCaptured } from '../support/cli.js';
import { dropSchema, onPostgres, openTestStore, uniqueSchema } from '../support/store.js';

/** `latchkey clients …` in this process, with its stdout and stderr captured. */
const cli = (...args: string[]) => runCliCaptured(['clients', ...args]);

describe('latchkey clients', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-'));
  const schema = uniqueSchema();
  const saved = { ...process.env };
  beforeAll(() => {
    process.env.LOG_LEVEL = 'silent';
    if (onPostgres) {
      process.env.DATABASE_SCHEMA = schema;
      process.env.KEY_ENCRYPTION_SECRET = 'cli-test-key-encryption-secret-0123456789';
    } else {
      process.env.DATA_DIR = dir;
    }
  });
  afterAll(async () => {
    process.env = saved;
    rmSync(dir, { recursive: true, force: true });
    if (onPostgres) await dropSchema(schema);
  });

  it('has --help naming every subcommand', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    for (const sub of ['create', 'list', 'show', 'update', 'rotate-secret', 'disable', 'delete']) expect(stdout).toContain(`  ${sub}`);
    // Every grant type the server serves, the device grant's URN included.
    for (const grantType of ['client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']) expect(stdout).toContain(grantType);
  });

  it('creates, shows, updates, rotates, disables and deletes a client', async () => {
    const created = await cli('create', '--client-id', 'etl', '--name', 'ETL', '--grant-type', 'client_credentials', '--scope', 'warehouse:write', '--resource', 'https://warehouse.example.com');
    expect(created.code).toBe(0);
    const body = JSON.parse(created.stdout);
    expect(body).toMatchObject({ client_id: 'etl', client_name: 'ETL', grant_types: ['client_credentials'], scope: 'warehouse:write', resources: ['https://warehouse.example.com'], source: 'cli' });
    expect(body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('shown once');

    const shown = JSON.parse((await cli('show', 'etl')).stdout);
    expect(shown.client_secret).toBeUndefined();
    expect(JSON.parse((await cli('list')).stdout).map((c: { client_id: string }) => c.client_id)).toEqual(['etl']);

    const updated = JSON.parse((await cli('update', 'etl', '--scope', 'warehouse:write warehouse:read')).stdout);
    expect(updated).toMatchObject({ client_name: 'ETL', scope: 'warehouse:write warehouse:read' });
    expect(updated.introspect_any_token).toBeUndefined();
    expect(JSON.parse((await cli('update', 'etl', '--introspect-any-token')).stdout)).toMatchObject({ introspect_any_token: true, scope: 'warehouse:write warehouse:read' });

    const rotated = JSON.parse((await cli('rotate-secret', 'etl', '--overlap', '1h')).stdout);
    expect(rotated.client_secret).not.toBe(body.client_secret);
    expect(rotated.client_secrets).toHaveLength(2);

    expect(JSON.parse((await cli('disable', 'etl')).stdout).disabled).toBe(true);
    expect((await cli('delete', 'etl')).code).toBe(2);
    const deleted = await cli('delete', 'etl', '--yes');
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe('deleted etl\n');
  });

  it('exempts a confidential OpenID Connect client from PKCE with --require-pkce false, shown by clients show (RFC 9700 §2.1.1)', async () => {
    const created = await cli('create', '--client-id', 'passport', '--redirect-uri', 'https://rp.example.com/cb', '--scope', 'openid', '--require-pkce', 'false');
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse((await cli('show', 'passport')).stdout)).toMatchObject({ client_id: 'passport', require_pkce: false });
    expect(JSON.parse((await cli('update', 'passport', '--require-pkce', 'true')).stdout).require_pkce).toBe(true);
    expect((await cli('update', 'passport', '--require-pkce', 'no')).stderr).toContain('--require-pkce must be true or false');
    expect((await cli('delete', 'passport', '--yes')).code).toBe(0);
  });

  it('reports metadata errors with their spec code, and usage errors, with exit code 2', async () => {
    const bad = await cli('create', '--redirect-uri', 'http://app.example.com/cb');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid_redirect_uri: redirect_uris: http://app.example.com/cb');
    expect((await cli('show', 'nobody')).stderr).toContain('not_found: no client nobody');
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('create', '--bogus')).code).toBe(2);
  });

  it.skipIf(onPostgres)('refuses to open the embedded store while a server owns it', async () => {
    writeFileSync(join(dir, 'latchkey.pid'), String(process.ppid));
    try {
      const res = await cli('list');
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`in use by a running Latchkey server (pid ${process.ppid})`);
    } finally {
      rmSync(join(dir, 'latchkey.pid'), { force: true });
    }
  });

  it.runIf(onPostgres)('with DATABASE_URL, a running server sees the change at once (NOTIFY)', async () => {
    const store = await openTestStore(schema);
    const app = await createTestApp({}, { store });
    try {
      const secret = JSON.parse((await cli('create', '--client-id', 'live', '--grant-type', 'client_credentials')).stdout).client_secret as string;
      const token = () => app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic('live', secret) }, payload: form({ grant_type: 'client_credentials' }) });
      expect((await token()).statusCode).toBe(200);
      await cli('disable', 'live');
      await eventually(async () => (await token()).statusCode === 401);
    } finally {
      await app.close();
      await store.close().catch(() => {});
    }
  });
});
