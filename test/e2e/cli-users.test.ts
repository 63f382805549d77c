import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/platform/db/database.js';
import { SessionRepository } from '../../src/users/session-store.js';
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
    expect(ok.stdout()).toBe('password of alice replaced\nsessions ended: 0, grants revoked: 0\n');
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

  /** The store the commands use, opened here between two of them (never while one runs). */
  async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    const where = env as Record<string, string | undefined>;
    const store = await openStore({ databaseUrl: where.DATABASE_URL, dataDir: where.DATA_DIR, ...(onPostgres ? { schema } : {}) });
    try { return await fn(store); } finally { await store.close(); }
  }

  describe('second factors', () => {
    const T0 = new Date('2026-05-01T10:00:00.000Z');
    let sub = '';

    it('mfa-status: the factors of the user, as text and as one JSON document', async () => {
      const create = run(['users', 'create', '--username', 'erin'], env);
      expect(await create.exited).toBe(0);
      sub = /\(sub ([0-9a-f-]{36})\)/.exec(create.stdout())![1]!;
      await withStore(async ({ db }) => {
        await db.insertInto('webauthn_credentials').values({
          id: 'cred-1', user_id: sub, name: 'Laptop', public_key: Buffer.from('pk'), counter: 0, device_bound: false, backed_up: true, aaguid: null, created_at: T0, last_used_at: null,
        }).execute();
        await db.insertInto('totp_factors').values({ user_id: sub, secret_ciphertext: 'ct', secret_nonce: 'n', confirmed_at: T0, last_used_step: null, created_at: T0, last_used_at: T0 }).execute();
        await db.insertInto('recovery_codes').values([1, 2].map((i) => ({ user_id: sub, code_hash: Buffer.from(`c${i}`), created_at: T0, used_at: null }))).execute();
        await new SessionRepository(db).create({
          idHash: Buffer.from('session-of-erin'), sid: 'sid-erin', userId: sub, authTime: new Date(), factors: ['pwd'], requiredAcr: null, idleTtlSeconds: 3600, absoluteTtlSeconds: 7200,
        }, new Date());
      });
      const json = run(['users', 'mfa-status', 'erin', '--json'], env);
      expect(await json.exited).toBe(0);
      expect(JSON.parse(json.stdout())).toEqual({
        passkeys: [{ id: 'cred-1', name: 'Laptop', created_at: '2026-05-01T10:00:00.000Z', last_used_at: null }],
        totp: { confirmed_at: '2026-05-01T10:00:00.000Z', last_used_at: '2026-05-01T10:00:00.000Z' },
        recovery_codes_remaining: 2,
        enrolment_required: false,
      });
      const text = run(['users', 'mfa-status', 'erin'], env);
      expect(await text.exited).toBe(0);
      expect(text.stdout()).toBe('passkeys: 1\n  cred-1\tLaptop\tcreated 2026-05-01T10:00:00.000Z\tlast used never\n'
        + 'totp: confirmed 2026-05-01T10:00:00.000Z, last used 2026-05-01T10:00:00.000Z\nrecovery codes remaining: 2\nenrolment required at next sign-in: no\n');
    });

    it('reset-mfa: removes every factor, requires enrolment, ends the sessions, audits who did it', async () => {
      const reset = run(['users', 'reset-mfa', 'erin'], env);
      expect(await reset.exited, reset.stderr()).toBe(0);
      expect(reset.stdout()).toBe('second factors of erin removed: passkeys 1, totp 1, recovery codes 2\n'
        + 'erin must enrol a second factor at the next sign-in\nsessions ended: 1\napps told by back-channel logout: 0 delivered, 0 failed\n');
      const status = run(['users', 'mfa-status', 'erin', '--json'], env);
      expect(await status.exited).toBe(0);
      expect(JSON.parse(status.stdout())).toEqual({ passkeys: [], totp: null, recovery_codes_remaining: 0, enrolment_required: true });
      await withStore(async ({ db }) => {
        expect(await db.selectFrom('sessions').select(['sid']).where('user_id', '=', sub).where('ended_at', 'is', null).execute()).toEqual([]);
        const events = await db.selectFrom('audit_events').select(['event', 'sub', 'details']).where('event', 'like', 'mfa.%').execute();
        expect(events).toEqual([{ event: 'mfa.reset', sub, details: { passkeys: 1, totp: true, recovery_codes: 2, by: `cli:${userInfo().username}` } }]);
      });
    });

    it('require-mfa-enrolment: marks the user (no session left to end); unknown users are refused', async () => {
      const create = run(['users', 'create', '--username', 'frank'], env);
      expect(await create.exited).toBe(0);
      const mark = run(['users', 'require-mfa-enrolment', 'frank'], env);
      expect(await mark.exited).toBe(0);
      expect(mark.stdout()).toBe('frank must enrol a second factor at the next sign-in\n');
      const status = run(['users', 'mfa-status', 'frank', '--json'], env);
      expect(await status.exited).toBe(0);
      expect(JSON.parse(status.stdout())).toMatchObject({ passkeys: [], enrolment_required: true });
      for (const command of ['mfa-status', 'reset-mfa', 'require-mfa-enrolment']) {
        const unknown = run(['users', command, 'nobody'], env);
        expect(await unknown.exited).toBe(2);
        expect(unknown.stderr()).toBe('latchkey users: no user "nobody"\n');
      }
    });
  });

  it('rejects an unknown option with a usage error', async () => {
    const r = run(['users', 'list', '--nope'], env);
    expect(await r.exited).toBe(2);
    expect(r.stderr()).toContain("latchkey users: Unknown option '--nope'");
  });
});
