import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';

const ADMIN = 'admin-credential-0123456789-abcdefghijklmnop';
const T0 = new Date('2026-05-01T10:00:00.000Z');
const T1 = new Date('2026-05-02T11:30:00.000Z');

describe('admin API: an account\'s second factors (/admin/users/:login/mfa)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ ...FAST_ARGON2, ADMIN_TOKENS: ADMIN }); });
  afterAll(async () => { await app.close(); });

  /** `token` null: no Authorization header at all. */
  const call = (method: 'GET' | 'POST', url: string, token: string | null = ADMIN) => app.server.inject({
    method, url, headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  const db = () => app.context.store.db;

  /** A passkey, a confirmed TOTP factor, three unused recovery codes and a used one, and a pending challenge. */
  async function seedFactors(userId: string): Promise<void> {
    await db().insertInto('webauthn_credentials').values({
      id: `cred-${userId}`, user_id: userId, name: 'YubiKey 5C', public_key: Buffer.from('pk'), counter: 0,
      device_bound: true, backed_up: false, aaguid: null, created_at: T0, last_used_at: T1,
    }).execute();
    await db().insertInto('totp_factors').values({
      user_id: userId, secret_ciphertext: 'ct', secret_nonce: 'nonce', confirmed_at: T0, last_used_step: null, created_at: T0, last_used_at: null,
    }).execute();
    await db().insertInto('recovery_codes').values([1, 2, 3, 4].map((i) => ({
      user_id: userId, code_hash: Buffer.from(`code-${i}`), created_at: T0, used_at: i === 4 ? T1 : null,
    }))).execute();
    await db().insertInto('webauthn_challenges').values({
      challenge_hash: Buffer.from(`challenge-${userId}`), purpose: 'registration', user_id: userId, expires_at: new Date(Date.now() + 60_000),
    }).execute();
  }

  const count = async (table: 'webauthn_credentials' | 'totp_factors' | 'recovery_codes' | 'webauthn_challenges', userId: string) =>
    Number((await db().selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).where('user_id', '=', userId).executeTakeFirstOrThrow()).n);

  it('refuses requests without the admin credential with 401 invalid_token, and changes nothing', async () => {
    const user = await createUser(app.context, 'nobearer');
    await seedFactors(user.id);
    for (const res of [
      await call('GET', '/admin/users/nobearer/mfa', null),
      await call('POST', '/admin/users/nobearer/mfa/reset', null),
      await call('POST', '/admin/users/nobearer/mfa/require-enrolment', 'wrong-credential-0123456789-abcdefghijklmnop'),
    ]) {
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('invalid_token');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="latchkey-admin", error="invalid_token"');
    }
    expect(await count('webauthn_credentials', user.id)).toBe(1);
    expect(await db().selectFrom('mfa_enrolment_required').selectAll().where('user_id', '=', user.id).execute()).toEqual([]);
  });

  it('shows an account\'s factors: passkeys, the confirmed TOTP factor, unused recovery codes', async () => {
    const user = await createUser(app.context, 'carol');
    await seedFactors(user.id);
    const res = await call('GET', '/admin/users/carol/mfa');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      passkeys: [{ id: `cred-${user.id}`, name: 'YubiKey 5C', created_at: '2026-05-01T10:00:00.000Z', last_used_at: '2026-05-02T11:30:00.000Z' }],
      totp: { confirmed_at: '2026-05-01T10:00:00.000Z', last_used_at: null },
      recovery_codes_remaining: 3,
      enrolment_required: false,
    });
    // By e-mail too.
    expect((await call('GET', '/admin/users/CAROL%40example.com/mfa')).json()).toEqual(res.json());
  });

  it('does not count a TOTP secret that was never confirmed', async () => {
    const user = await createUser(app.context, 'pending');
    await db().insertInto('totp_factors').values({
      user_id: user.id, secret_ciphertext: 'ct', secret_nonce: 'nonce', confirmed_at: null, last_used_step: null, created_at: T0, last_used_at: null,
    }).execute();
    expect((await call('GET', '/admin/users/pending/mfa')).json()).toEqual({ passkeys: [], totp: null, recovery_codes_remaining: 0, enrolment_required: false });
  });

  it('resets: removes every factor, requires enrolment, ends the user\'s sessions, audits who did it', async () => {
    const user = await createUser(app.context, 'alice');
    const other = await createUser(app.context, 'bob');
    // Signed in before their factors exist (with them, a password alone would not finish a sign-in).
    const browser = new Browser(app);
    expect((await browser.signIn('alice', PASSWORD)).statusCode).toBe(303);
    expect((await browser.request('GET', '/')).statusCode).toBe(200);
    const bobBrowser = new Browser(app);
    expect((await bobBrowser.signIn('bob', PASSWORD)).statusCode).toBe(303);
    await seedFactors(user.id);
    await seedFactors(other.id);

    const res = await call('POST', '/admin/users/alice/mfa/reset');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ passkeys: 1, totp: true, recovery_codes: 3, sessions_ended: 1 });

    // The session cookie no longer signs alice in.
    const account = await browser.request('GET', '/');
    expect(account.statusCode).toBe(303);
    expect(account.headers.location).toBe('/login');
    for (const table of ['webauthn_credentials', 'totp_factors', 'recovery_codes', 'webauthn_challenges'] as const) expect(await count(table, user.id)).toBe(0);
    expect((await call('GET', '/admin/users/alice/mfa')).json()).toEqual({ passkeys: [], totp: null, recovery_codes_remaining: 0, enrolment_required: true });

    // Nobody else's factors or session are touched.
    expect((await call('GET', '/admin/users/bob/mfa')).json()).toMatchObject({ recovery_codes_remaining: 3, enrolment_required: false });
    expect(await count('webauthn_challenges', other.id)).toBe(1);
    expect((await bobBrowser.request('GET', '/')).statusCode).toBe(200);

    // Again: nothing left to remove, no session left to end, enrolment still required.
    expect((await call('POST', '/admin/users/alice/mfa/reset')).json()).toEqual({ passkeys: 0, totp: false, recovery_codes: 0, sessions_ended: 0 });

    await app.services.sessionEnd.idle();
    await app.context.audit.flush();
    const events = (await new AuditEventRepository(db()).query({})).filter((e) => e.event === 'mfa.reset');
    expect(events.map((e) => [e.sub, e.ip, e.details])).toEqual([
      [user.id, '127.0.0.1', { passkeys: 1, totp: true, recovery_codes: 3, by: 'admin_api', admin: expect.stringMatching(/^token-[0-9a-f]{8}$/) }],
      [user.id, '127.0.0.1', { passkeys: 0, totp: false, recovery_codes: 0, by: 'admin_api', admin: expect.stringMatching(/^token-[0-9a-f]{8}$/) }],
    ]);
  });

  it('requires enrolment at the next sign-in and ends the user\'s sessions, keeping the factors', async () => {
    const user = await createUser(app.context, 'dave');
    await seedFactors(user.id);
    const browser = new Browser(app);
    expect((await browser.signIn('dave', PASSWORD)).statusCode).toBe(303);

    const res = await call('POST', '/admin/users/dave/mfa/require-enrolment');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ sessions_ended: 1 });
    expect((await browser.request('GET', '/')).headers.location).toBe('/login');
    expect((await call('GET', '/admin/users/dave/mfa')).json()).toMatchObject({ recovery_codes_remaining: 3, enrolment_required: true });
    const [first] = await db().selectFrom('mfa_enrolment_required').select('required_at').where('user_id', '=', user.id).execute();

    // Asked twice: the first requirement stands (its time kept).
    expect((await call('POST', '/admin/users/dave/mfa/require-enrolment')).json()).toEqual({ sessions_ended: 0 });
    expect(await db().selectFrom('mfa_enrolment_required').select('required_at').where('user_id', '=', user.id).execute()).toEqual([first]);

    await app.context.audit.flush();
    const events = (await new AuditEventRepository(db()).query({})).filter((e) => e.event === 'mfa.enrolment_required');
    expect(events.map((e) => [e.sub, e.details.by])).toEqual([[user.id, 'admin_api'], [user.id, 'admin_api']]);
  });

  it('parallel resets: each factor is counted by exactly one of them, every one answers 200', async () => {
    const user = await createUser(app.context, 'grace');
    await seedFactors(user.id);
    const results = await Promise.all(Array.from({ length: 8 }, () => call('POST', '/admin/users/grace/mfa/reset')));
    expect(results.map((r) => r.statusCode)).toEqual(Array(8).fill(200));
    const bodies = results.map((r) => r.json() as { passkeys: number; totp: boolean; recovery_codes: number });
    expect(bodies.reduce((n, b) => n + b.passkeys, 0)).toBe(1);
    expect(bodies.filter((b) => b.totp)).toHaveLength(1);
    expect(bodies.reduce((n, b) => n + b.recovery_codes, 0)).toBe(3);
    expect(await db().selectFrom('mfa_enrolment_required').select('user_id').where('user_id', '=', user.id).execute()).toEqual([{ user_id: user.id }]);
  });

  it('answers an unknown user with 404 not_found, as for an unknown client', async () => {
    for (const [method, url] of [['GET', '/admin/users/nobody/mfa'], ['POST', '/admin/users/nobody/mfa/reset'], ['POST', '/admin/users/nobody/mfa/require-enrolment']] as const) {
      const res = await call(method, url);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', error_description: 'no such user' });
    }
  });
});

describe('admin API without ADMIN_TOKENS', () => {
  it('has no MFA admin routes', async () => {
    const app = await createTestApp();
    try {
      expect((await app.server.inject({ method: 'GET', url: '/admin/users/alice/mfa' })).json()).toEqual({ error: 'not_found', error_description: 'no route for GET /admin/users/alice/mfa' });
    } finally {
      await app.close();
    }
  });
});
