import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../../src/cli.js';
import { EXIT, EXIT_CODES_HELP } from '../../src/cli/output.js';
import { withCliStore } from '../../src/cli/store.js';
import { listSigningKeys } from '../../src/platform/keys/signing-key-store.js';
import { configDocumentation, loadConfig } from '../../src/server/config.js';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';
import { FAST_ARGON2 } from '../support/oidc.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

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

/** Every list command's --json prints one JSON document on stdout, nothing on stderr, and no secret. */
describe('--json: one JSON document from every list command', () => {
  const store = sharedStoreForCli('latchkey-lists-');
  let clientSecret = '';
  let sub = '';

  beforeAll(async () => {
    await (await store.open()).close(); // a server's first start: the signing keys
    store.setUp(FAST_ARGON2);
    const created = await runCliCaptured(['clients', 'create', '--client-id', 'etl', '--name', 'ETL', '--grant-type', 'client_credentials', '--scope', 'warehouse:write']);
    expect(created.code).toBe(0);
    clientSecret = (JSON.parse(created.stdout) as { client_secret: string }).client_secret;
    const user = await runCliCaptured(['users', 'create', '--username', 'alice', '--email', 'alice@example.com', '--name', 'Alice Liddell']);
    expect(user.code).toBe(0);
    sub = /\(sub ([0-9a-f-]{36})\)/.exec(user.stdout)![1]!;
  });
  afterAll(() => store.tearDown());

  /** `latchkey …` that must succeed with one JSON document and a quiet stderr. */
  async function json(...args: string[]): Promise<unknown> {
    const res = await runCliCaptured(args);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(res.stdout);
  }

  it('clients list --json: an array of clients, the same as without --json, never a secret or its hash', async () => {
    const res = await runCliCaptured(['clients', 'list', '--json']);
    expect((await runCliCaptured(['clients', 'list'])).stdout).toBe(res.stdout);
    const listed = JSON.parse(res.stdout) as Array<Record<string, unknown>>;
    expect(listed).toEqual([{
      client_id: 'etl', client_type: 'confidential', client_name: 'ETL', scope: 'warehouse:write', resources: [],
      grant_types: ['client_credentials'], skip_consent: false, redirect_uris: [], response_types: [],
      post_logout_redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', require_pushed_authorization_requests: false,
      disabled: false, source: 'cli', client_id_issued_at: Math.floor(Date.parse(listed[0]!.created_at as string) / 1000),
      created_at: expect.stringMatching(ISO), updated_at: listed[0]!.created_at, client_secrets: [{ slot: 'current', expires_at: null }],
      tokens_not_before: null, last_used_at: null,
    }]);
    const stored = await withCliStore(loadConfig(process.env), (s) => s.db.selectFrom('clients').select('secret_hash').executeTakeFirstOrThrow());
    expect(stored.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.stdout).not.toContain(stored.secret_hash);
    expect(res.stdout).not.toContain(clientSecret);
  });

  it('users list --json: an array of users, never a password hash', async () => {
    const res = await runCliCaptured(['users', 'list', '--json']);
    const listed = JSON.parse(res.stdout) as Array<Record<string, unknown>>;
    expect(listed).toEqual([{
      sub, username: 'alice', email: 'alice@example.com', email_verified: false, name: 'Alice Liddell', preferred_username: 'alice',
      phone_number: null, disabled: false, has_password: true, created_at: expect.stringMatching(ISO), updated_at: listed[0]!.created_at,
    }]);
    const stored = await withCliStore(loadConfig(process.env), (s) => s.db.selectFrom('users').select('password_hash').executeTakeFirstOrThrow());
    expect(stored.password_hash).toMatch(/^\$argon2id\$/);
    expect(res.stdout).not.toContain(stored.password_hash);
    expect(res.stdout).not.toContain('argon2');
  });

  it('keys list --json: an array of keys with their states and history, never key material', async () => {
    const rows = await withCliStore(loadConfig(process.env), (s) => listSigningKeys(s.db));
    expect(rows.map((r) => r.state).sort()).toEqual(['active', 'next']);
    const res = await runCliCaptured(['keys', 'list', '--json']);
    expect(JSON.parse(res.stdout)).toEqual(rows.map((r) => ({
      kid: r.kid, alg: 'ES256', state: r.state, created_at: r.created_at.toISOString(),
      activated_at: r.activated_at?.toISOString() ?? null, retired_at: null, removed_at: null, revoked_at: null, revoked_reason: null,
    })));
    for (const r of rows) expect(res.stdout).not.toContain(r.private_key_ciphertext!);
    expect(res.stdout).not.toContain('"d"');
  });

  it('audit --json: the page as GET /admin/audit answers it, the same events as the JSON lines', async () => {
    const page = await json('audit', '--json', '--event', 'client.created') as { events: Array<Record<string, unknown>>; next_cursor: string | null };
    const event = page.events[0]!;
    expect(page).toEqual({
      events: [{
        id: expect.stringMatching(/^\d+$/), at: expect.stringMatching(ISO), event: 'client.created', request_id: null, client_id: 'etl',
        sub: null, ip: null, user_agent: null, jti: null, details: { source: 'cli', ...(process.env.USER ? { user: process.env.USER } : {}) },
      }],
      next_cursor: null,
    });
    expect((await runCliCaptured(['audit', '--event', 'client.created'])).stdout).toBe(`${JSON.stringify(event)}\n`);

    // A page with more after it: the cursor is in the document (and only on stderr without --json).
    const first = await json('audit', '--json', '--limit', '1') as { events: unknown[]; next_cursor: string };
    expect(first.events).toHaveLength(1);
    expect(first.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const lines = await runCliCaptured(['audit', '--limit', '1']);
    expect(lines).toEqual({ code: 0, stdout: `${JSON.stringify(first.events[0])}\n`, stderr: `more events follow: --cursor ${first.next_cursor}\n` });
  });

  it('config --json: an array of the variables, their defaults and meanings (never their values)', async () => {
    const rows = await json('config', '--json') as Array<Record<string, string>>;
    expect(rows).toEqual(configDocumentation());
    expect(rows.find((r) => r.name === 'DATABASE_URL')).toEqual({ name: 'DATABASE_URL', default: '', description: 'postgres:// URL of a real PostgreSQL; several hosts (`postgres://u:p@db-a,db-b/latchkey?target_session_attrs=read-write`) are tried in order and, with read-write, only the primary is used, found again after a failover. Unset: the embedded PGlite store under DATA_DIR.' });
    expect(Object.keys(rows[0]!)).toEqual(['name', 'default', 'description']);
  });

  it('--json anywhere but a list is a usage error (exit 2)', async () => {
    expect(await runCliCaptured(['clients', 'show', 'etl', '--json'])).toEqual({ code: 2, stdout: '', stderr: 'latchkey clients: --json goes with list (the other subcommands print JSON as they are)\n' });
    expect(await runCliCaptured(['users', 'disable', 'alice', '--json'])).toEqual({ code: 2, stdout: '', stderr: 'latchkey users: --json goes with list, sessions and mfa-status\n' });
    expect(await runCliCaptured(['keys', 'rotate', '--json'])).toEqual({ code: 2, stdout: '', stderr: 'latchkey keys: --json goes with list\n' });
    expect(await runCliCaptured(['config', '--check', '--json'])).toEqual({ code: 2, stdout: '', stderr: 'latchkey config: --json lists the variables; --check validates them: give one\n' });
  });
});
