import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/platform/db/database.js';
import { ClientsFileError } from '../../src/oauth/clients/clients-file.js';
import { createTestApp } from '../support/app.js';
import { basic, form, FORM_HEADERS } from '../support/clients.js';
import { openTestStore } from '../support/store.js';

const BILLING_SECRET = 'billing-secret-from-the-environment-0123456789';
const ROTATED_SECRET = 'billing-secret-rotated-in-the-environment-9876';

const YAML = `
clients:
  - client_id: billing
    client_name: Billing
    client_secret_env: BILLING_SECRET
    grant_types: [client_credentials]
    scope: invoices:read invoices:write
    resources: [https://billing-api.example.com]
    introspect_any_token: true
  - client_id: portal
    grant_types: [authorization_code]
    redirect_uris: [https://portal.example.com/callback]
    token_endpoint_auth_method: none
    skip_consent: true
`;

describe('the clients file (CLIENTS_FILE)', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-clients-'));
    store = await openTestStore();
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => { const path = join(dir, name); writeFileSync(path, text); return path; };
  const start = (path: string, env: Record<string, string>) => createTestApp({ CLIENTS_FILE: path }, { store, env });
  const clientsRows = () => store.db.selectFrom('clients').select(['client_id', 'updated_at', 'source', 'secret_hash']).orderBy('client_id').execute();

  it('upserts its clients at start-up, secrets from the environment, and is idempotent', async () => {
    const path = write('clients.yaml', YAML);
    const first = await start(path, { BILLING_SECRET });
    try {
      const res = await first.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic('billing', BILLING_SECRET) }, payload: form({ grant_type: 'client_credentials' }) });
      expect(res.statusCode).toBe(200);
      expect(res.json().scope).toBe('invoices:read invoices:write');
      expect(first.logs.lines.filter((l) => l.event === 'client.created').map((l) => l.client_id)).toEqual(['billing', 'portal']);
      // The file may mark a resource server (an administrator's member).
      expect((await first.services.registry.get('billing')).metadata.introspect_any_token).toBe(true);
      expect(first.logs.text()).not.toContain(BILLING_SECRET);
    } finally {
      await first.close();
    }
    const rows = await clientsRows();
    expect(rows.map((r) => [r.client_id, r.source])).toEqual([['billing', 'bootstrap'], ['portal', 'bootstrap']]);

    const second = await start(path, { BILLING_SECRET });
    try {
      expect(second.logs.lines.filter((l) => String(l.event).startsWith('client.'))).toEqual([]);
      expect(second.logs.lines.find((l) => l.msg === 'clients file applied')?.clients).toEqual({ billing: 'unchanged', portal: 'unchanged' });
    } finally {
      await second.close();
    }
    expect(await clientsRows()).toEqual(rows);
  });

  it('replaces a client whose declaration or secret changed, and accepts JSON', async () => {
    const path = write('clients.json', JSON.stringify({ clients: [{ client_id: 'billing', client_secret_env: 'NEW_SECRET', grant_types: ['client_credentials'], scope: 'invoices:read' }] }));
    const app = await start(path, { NEW_SECRET: ROTATED_SECRET });
    try {
      expect(app.logs.lines.find((l) => l.event === 'client.updated')?.client_id).toBe('billing');
      const token = (secret: string) => app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic('billing', secret) }, payload: form({ grant_type: 'client_credentials' }) });
      expect((await token(ROTATED_SECRET)).json().scope).toBe('invoices:read');
      expect((await token(BILLING_SECRET)).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });

  it.each([
    ['clients:\n  - client_id: billing\n    grant_types: [client_credentials]\n', {}, 'client "billing": client_secret_env: required for client_secret_basic (the environment variable holding the secret)'],
    ['clients:\n  - client_id: billing\n    client_secret_env: MISSING\n    grant_types: [client_credentials]\n', {}, 'client "billing": client_secret_env: environment variable MISSING is not set'],
    ['clients:\n  - client_id: billing\n    client_secret_env: SHORT\n    grant_types: [client_credentials]\n', { SHORT: 'short' }, 'client "billing": client_secret_env: the secret in SHORT must be at least 32 characters'],
    ['clients:\n  - client_id: billing\n    client_secret: inline\n    grant_types: [client_credentials]\n', {}, 'client "billing": client_secret: secrets do not belong in the file'],
    ['clients:\n  - client_id: web\n    grant_types: [authorization_code]\n    redirect_uris: [http://web.example.com/cb]\n    token_endpoint_auth_method: none\n', {}, 'client "web": redirect_uris: http://web.example.com/cb: http is allowed only on a loopback host'],
    ['clients:\n  - client_id: svc\n    client_secret_env: S\n    grant_types: [client_credentials]\n    scopes: a\n', { S: 'x'.repeat(40) }, 'client "svc": metadata: Unrecognized key: "scopes"'],
    ['clients:\n  - client_id: a b\n', {}, 'entry 1: client_id: must be 1-200 characters'],
    ['clients: [\n', {}, 'is not valid YAML'],
    ['clients:\n  - client_id: x\n    client_secret_env: S\n    grant_types: [client_credentials]\n  - client_id: x\n    client_secret_env: S\n    grant_types: [client_credentials]\n', { S: 'x'.repeat(40) }, 'client "x" is declared twice'],
  ])('stops start-up on an invalid file, naming the client and the field: %#', async (text, env, message) => {
    const path = write('bad.yaml', text);
    const before = await clientsRows();
    const err = await start(path, env).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ClientsFileError);
    expect((err as Error).message).toContain(`CLIENTS_FILE ${path}: `);
    expect((err as Error).message).toContain(message);
    expect(await clientsRows()).toEqual(before);
  });

  it('refuses a new localhost redirect URI when the issuer is not on loopback, and keeps a stored one (RFC 8252 §8.3)', async () => {
    const publicStart = (path: string) => createTestApp({ CLIENTS_FILE: path, ISSUER: 'https://id.example.com' }, { store, env: {} });
    const declare = (uris: string[]) => write('native.yaml', `clients:\n  - client_id: native\n    grant_types: [authorization_code]\n    redirect_uris: [${uris.join(', ')}]\n    token_endpoint_auth_method: none\n`);
    // Declared while the issuer was on loopback: stored.
    const dev = await start(declare(['http://localhost:7000/cb']), {});
    await dev.close();
    // The same declaration still starts on the public issuer; one more localhost URI does not.
    const same = await publicStart(declare(['http://localhost:7000/cb']));
    await same.close();
    const err = await publicStart(declare(['http://localhost:7000/cb', 'http://localhost:7001/cb'])).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ClientsFileError);
    expect((err as Error).message).toContain('client "native": redirect_uris: http://localhost:7001/cb: localhost is NOT RECOMMENDED in a loopback redirect URI (RFC 8252 §8.3)');
    const fresh = await publicStart(write('fresh.yaml', 'clients:\n  - client_id: fresh-native\n    grant_types: [authorization_code]\n    redirect_uris: [http://localhost:7000/cb]\n    token_endpoint_auth_method: none\n'))
      .then(() => undefined, (e: unknown) => e);
    expect((fresh as Error).message).toContain('client "fresh-native": redirect_uris: http://localhost:7000/cb: localhost is NOT RECOMMENDED');
  });

  it('stops start-up when the file is missing', async () => {
    const err = await start(join(dir, 'nope.yaml'), {}).then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).toBe(`CLIENTS_FILE ${join(dir, 'nope.yaml')}: cannot be read (ENOENT)`);
  });
});
