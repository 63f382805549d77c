import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run, storeEnv } from '../support/process.js';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

describe('latchkey users', () => {
  const schema = uniqueSchema();
  const env = { ...storeEnv(mkdtempSync(join(tmpdir(), 'latchkey-users-')), schema), ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' };
  afterAll(async () => { if (onPostgres) await dropSchema(schema); });

  it('creates a user with a generated password shown once, and lists it', async () => {
    const create = run(['users', 'create', '--username', 'alice', '--email', 'alice@example.com', '--name', 'Alice Liddell'], env);
    expect(await create.exited).toBe(0);
    expect(create.stdout()).toMatch(/^created user alice \(sub [0-9a-f-]{36}\)\npassword \(shown once\): [A-Za-z0-9_-]{24}\n$/);
    const list = run(['users', 'list', '--json'], env);
    expect(await list.exited).toBe(0);
    const users = JSON.parse(list.stdout()) as Array<Record<string, unknown>>;
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ username: 'alice', email: 'alice@example.com', name: 'Alice Liddell', preferred_username: 'alice', disabled: false, has_password: true });
    expect(JSON.stringify(users)).not.toContain('argon2');
  });

  it('reads a password from standard input and enforces the minimum length', async () => {
    const short = run(['users', 'set-password', 'alice', '--password-stdin'], env, 'too short\n');
    expect(await short.exited).toBe(2);
    expect(short.stderr()).toBe('latchkey users: password must be at least 12 characters\n');
    const ok = run(['users', 'set-password', 'ALICE', '--password-stdin'], env, 'a long enough passphrase\n');
    expect(await ok.exited).toBe(0);
    expect(ok.stdout()).toBe('password of alice replaced\n');
  });

  it('refuses a duplicate username and an invalid one', async () => {
    const dup = run(['users', 'create', '--username', 'Alice'], env);
    expect(await dup.exited).toBe(2);
    expect(dup.stderr()).toBe('latchkey users: a user with that username or email already exists\n');
    const bad = run(['users', 'create', '--username', 'has space'], env);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toBe('latchkey users: username: 1 to 64 letters, digits or . _ @ + -\n');
  });

  it('disables a user, and says so for an unknown one', async () => {
    const off = run(['users', 'disable', 'alice'], env);
    expect(await off.exited).toBe(0);
    const list = run(['users', 'list'], env);
    await list.exited;
    expect(list.stdout()).toMatch(/^alice\t[0-9a-f-]{36}\talice@example.com\tdisabled\n$/);
    const unknown = run(['users', 'disable', 'nobody'], env);
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toBe('latchkey users: no user "nobody"\n');
  });

  it('rejects an unknown option with a usage error', async () => {
    const r = run(['users', 'list', '--nope'], env);
    expect(await r.exited).toBe(2);
    expect(r.stderr()).toContain("latchkey users: Unknown option '--nope'");
  });
});
