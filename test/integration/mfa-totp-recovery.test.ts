import { randomBytes } from 'node:crypto';
import { Secret, TOTP as Otp } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECOVERY_CODES, RecoveryCodes } from '../../src/capabilities/mfa/recovery-codes.js';
import { TOTP_SECRET_ENCRYPTION, TotpFactors } from '../../src/capabilities/mfa/totp.js';
import { sha256 } from '../../src/platform/crypto.js';
import type { Store } from '../../src/platform/db/database.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { KeyEncryption } from '../../src/platform/keys/encryption.js';
import { MIGRATIONS } from '../../src/server/capabilities.js';
import { UserRepository } from '../../src/users/user-store.js';
import { openTestStore } from '../support/store.js';

const KEY_SECRET = 'k'.repeat(43);
const T0 = new Date('2026-06-01T00:00:10Z'); // 10 s into a step
const STEP0 = Math.floor(T0.getTime() / 30_000);
const later = (steps: number) => new Date(T0.getTime() + steps * 30_000);
/** The code an authenticator app shows for `secret` in `step`, computed by otpauth itself. */
const codeOf = (secret: string, step: number) => Otp.generate({ secret: Secret.fromBase32(secret), timestamp: step * 30_000 });

let store: Store;
let users: UserRepository;
beforeAll(async () => {
  store = await openTestStore();
  await migrate(store.db, MIGRATIONS);
  users = new UserRepository(store.db);
});
afterAll(async () => { await store.close(); });

async function newUser(): Promise<{ id: string; username: string }> {
  const user = await users.create({ username: `user-${randomBytes(4).toString('hex')}` }, T0);
  return { id: user.id, username: user.username };
}

describe('TOTP factor (RFC 6238)', () => {
  let totp: TotpFactors;
  beforeAll(() => { totp = new TotpFactors(store.db, KEY_SECRET, 'id.example.com'); });

  /** A user with a confirmed factor (confirmed with the code of STEP0) and its secret. */
  async function enrolled(): Promise<{ user: { id: string; username: string }; secret: string }> {
    const user = await newUser();
    const { secret } = (await totp.begin(user, T0))!;
    expect(await totp.confirm(user.id, codeOf(secret, STEP0), T0)).toBe('ok');
    return { user, secret };
  }

  describe('begin', () => {
    it('returns a 160-bit base32 secret, an otpauth URI naming issuer and account, and an SVG QR code', async () => {
      const user = await newUser();
      const started = (await totp.begin(user, T0))!;
      expect(started.secret).toMatch(/^[A-Z2-7]{32}$/); // 32 × 5 bits = 160
      const uri = new URL(started.uri);
      expect(uri.protocol).toBe('otpauth:');
      expect(uri.host).toBe('totp');
      expect(decodeURIComponent(uri.pathname)).toBe(`/id.example.com:${user.username}`);
      expect(uri.searchParams.get('issuer')).toBe('id.example.com');
      expect(uri.searchParams.get('secret')).toBe(started.secret);
      expect(uri.searchParams.get('algorithm')).toBe('SHA1');
      expect(uri.searchParams.get('digits')).toBe('6');
      expect(uri.searchParams.get('period')).toBe('30');
      expect(started.qrSvg.startsWith('<svg')).toBe(true);
      expect(started.qrSvg.trimEnd().endsWith('</svg>')).toBe(true);
    });

    it('stores the secret encrypted: only the right key-encryption secret and user id decrypt it', async () => {
      const user = await newUser();
      const other = await newUser();
      const { secret } = (await totp.begin(user, T0))!;
      const row = await store.db.selectFrom('totp_factors').selectAll().where('user_id', '=', user.id).executeTakeFirstOrThrow();
      expect(row.secret_ciphertext).not.toBe(secret);
      expect(row.secret_ciphertext).not.toContain(secret);
      expect(Buffer.from(row.secret_ciphertext, 'base64url').toString('latin1')).not.toContain(secret);
      const sealed = { ciphertext: row.secret_ciphertext, nonce: row.secret_nonce };
      expect(new KeyEncryption(KEY_SECRET, TOTP_SECRET_ENCRYPTION).decrypt(user.id, sealed)).toBe(secret);
      expect(() => new KeyEncryption(KEY_SECRET, TOTP_SECRET_ENCRYPTION).decrypt(other.id, sealed)).toThrow();
      expect(() => new KeyEncryption('x'.repeat(43), TOTP_SECRET_ENCRYPTION).decrypt(user.id, sealed)).toThrow();
      // The signing keys' own scheme derives another key from the same secret.
      expect(() => new KeyEncryption(KEY_SECRET).decrypt(user.id, sealed)).toThrow();
      expect(row).toMatchObject({ confirmed_at: null, last_used_step: null, last_used_at: null });
    });

    it('restarting a pending enrolment replaces its secret: a code of the old one no longer confirms', async () => {
      const user = await newUser();
      const first = (await totp.begin(user, T0))!;
      const second = (await totp.begin(user, T0))!;
      expect(second.secret).not.toBe(first.secret);
      expect(await totp.confirm(user.id, codeOf(first.secret, STEP0), T0)).toBe('invalid');
      expect(await totp.confirm(user.id, codeOf(second.secret, STEP0), T0)).toBe('ok');
    });

    it('refuses (undefined) while a confirmed factor exists, and leaves that factor working', async () => {
      const { user, secret } = await enrolled();
      expect(await totp.begin(user, later(1))).toBeUndefined();
      expect(await totp.verify(user.id, codeOf(secret, STEP0 + 1), later(1))).toBe('ok');
    });
  });

  describe('confirm', () => {
    it('accepts the right code: the factor counts from then on', async () => {
      const user = await newUser();
      const { secret } = (await totp.begin(user, T0))!;
      expect(await totp.status(user.id)).toBeUndefined();
      expect(await totp.confirm(user.id, codeOf(secret, STEP0), T0)).toBe('ok');
      expect(await totp.status(user.id)).toEqual({ confirmedAt: T0, lastUsedAt: null });
      const row = await store.db.selectFrom('totp_factors').select('last_used_step').where('user_id', '=', user.id).executeTakeFirstOrThrow();
      expect(Number(row.last_used_step)).toBe(STEP0);
    });

    it('refuses a wrong code, a code two steps away, and a confirmation with nothing pending', async () => {
      const user = await newUser();
      const { secret } = (await totp.begin(user, T0))!;
      const right = codeOf(secret, STEP0);
      expect(await totp.confirm(user.id, right === '000000' ? '000001' : '000000', T0)).toBe('invalid');
      expect(await totp.confirm(user.id, codeOf(secret, STEP0 + 2), T0)).toBe('invalid');
      expect(await totp.status(user.id)).toBeUndefined();
      expect(await totp.confirm((await newUser()).id, right, T0)).toBe('invalid');
      expect(await totp.confirm(user.id, right, T0)).toBe('ok');
      // Confirmed: nothing is pending any more.
      expect(await totp.confirm(user.id, codeOf(secret, STEP0 + 1), later(1))).toBe('invalid');
    });

    it('confirms once when ten confirmations race with the right code', async () => {
      const user = await newUser();
      const { secret } = (await totp.begin(user, T0))!;
      const results = await Promise.all(Array.from({ length: 10 }, () => totp.confirm(user.id, codeOf(secret, STEP0), T0)));
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      expect(results.filter((r) => r === 'invalid')).toHaveLength(9);
    });
  });

  describe('verify (§5.2: each code accepted once)', () => {
    it('calls the code that confirmed the factor replayed, and accepts the next step\'s code', async () => {
      const { user, secret } = await enrolled();
      expect(await totp.verify(user.id, codeOf(secret, STEP0), T0)).toBe('replayed');
      const t1 = new Date(later(1).getTime() + 5_000);
      expect(await totp.verify(user.id, codeOf(secret, STEP0 + 1), t1)).toBe('ok');
      expect(await totp.status(user.id)).toEqual({ confirmedAt: T0, lastUsedAt: t1 });
      // Still inside the window, but not later than the step last accepted.
      expect(await totp.verify(user.id, codeOf(secret, STEP0 + 1), t1)).toBe('replayed');
      expect(await totp.verify(user.id, codeOf(secret, STEP0), t1)).toBe('replayed');
    });

    it('accepts a code one step ahead (clock drift), after which the current step\'s code is replayed', async () => {
      const { user, secret } = await enrolled();
      const t = later(3);
      expect(await totp.verify(user.id, codeOf(secret, STEP0 + 4), t)).toBe('ok');
      expect(await totp.verify(user.id, codeOf(secret, STEP0 + 3), t)).toBe('replayed');
    });

    it('refuses a wrong code, one outside the window and a malformed one as invalid', async () => {
      const { user, secret } = await enrolled();
      const t = later(5);
      const right = codeOf(secret, STEP0 + 5);
      expect(await totp.verify(user.id, right === '123456' ? '654321' : '123456', t)).toBe('invalid');
      expect(await totp.verify(user.id, codeOf(secret, STEP0 + 7), t)).toBe('invalid');
      expect(await totp.verify(user.id, right.slice(0, 5), t)).toBe('invalid');
      expect(await totp.verify(user.id, `${right}0`, t)).toBe('invalid');
      expect(await totp.verify(user.id, `${right.slice(0, 3)} ${right.slice(3)}`, t)).toBe('ok');
    });

    it('accepts exactly one of ten parallel verifications of one fresh code; the rest are replayed', async () => {
      const { user, secret } = await enrolled();
      const t = later(2);
      const code = codeOf(secret, STEP0 + 2);
      const results = await Promise.all(Array.from({ length: 10 }, () => totp.verify(user.id, code, t)));
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      expect(results.filter((r) => r === 'replayed')).toHaveLength(9);
    });

    it('is invalid before the enrolment is confirmed, and without any factor', async () => {
      const user = await newUser();
      expect(await totp.verify(user.id, '123456', T0)).toBe('invalid');
      const { secret } = (await totp.begin(user, T0))!;
      expect(await totp.verify(user.id, codeOf(secret, STEP0), T0)).toBe('invalid');
      // The refused verification did not use up the code: it still confirms.
      expect(await totp.confirm(user.id, codeOf(secret, STEP0), T0)).toBe('ok');
    });
  });

  describe('remove', () => {
    it('deletes a confirmed factor; verification then fails and a new enrolment may begin', async () => {
      const { user, secret } = await enrolled();
      expect(await totp.remove(user.id)).toBe(true);
      expect(await totp.status(user.id)).toBeUndefined();
      expect(await totp.verify(user.id, codeOf(secret, STEP0 + 1), later(1))).toBe('invalid');
      expect(await totp.remove(user.id)).toBe(false);
      expect(await totp.begin(user, later(1))).toBeDefined();
    });

    it('deletes a pending enrolment', async () => {
      const user = await newUser();
      const { secret } = (await totp.begin(user, T0))!;
      expect(await totp.remove(user.id)).toBe(true);
      expect(await totp.confirm(user.id, codeOf(secret, STEP0), T0)).toBe('invalid');
    });
  });
});

describe('recovery codes', () => {
  const FORMAT = /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/;
  let recovery: RecoveryCodes;
  beforeAll(() => { recovery = new RecoveryCodes(store.db); });

  it('generates ten distinct codes of 16 base32 characters in four groups, stored only as SHA-256', async () => {
    const user = await newUser();
    const codes = await recovery.generate(user.id, T0);
    expect(RECOVERY_CODES.count).toBe(10);
    expect(codes).toHaveLength(10);
    for (const code of codes) expect(code).toMatch(FORMAT);
    expect(new Set(codes).size).toBe(10);
    const rows = await store.db.selectFrom('recovery_codes').selectAll().where('user_id', '=', user.id).execute();
    expect(rows.map((r) => Buffer.from(r.code_hash).toString('hex')).sort()).toEqual(codes.map((c) => sha256(c.replaceAll('-', '')).toString('hex')).sort());
    expect(rows.every((r) => r.used_at === null && r.created_at.getTime() === T0.getTime())).toBe(true);
    expect(await recovery.remaining(user.id)).toBe(10);
  });

  it('has none left for an account that never generated any', async () => {
    expect(await recovery.remaining((await newUser()).id)).toBe(0);
    expect(await recovery.use((await newUser()).id, 'abcd-efgh-ijkl-mnop', T0)).toEqual({ ok: false });
  });

  it('uses a code once, counting down what is left', async () => {
    const user = await newUser();
    const codes = await recovery.generate(user.id, T0);
    expect(await recovery.use(user.id, codes[0]!, T0)).toEqual({ ok: true, remaining: 9 });
    expect(await recovery.use(user.id, codes[0]!, T0)).toEqual({ ok: false });
    expect(await recovery.remaining(user.id)).toBe(9);
    const row = await store.db.selectFrom('recovery_codes').select('used_at').where('code_hash', '=', sha256(codes[0]!.replaceAll('-', ''))).executeTakeFirstOrThrow();
    expect(row.used_at).toEqual(T0);
  });

  it('accepts a code typed in capitals, with spaces or without dashes', async () => {
    const user = await newUser();
    const codes = await recovery.generate(user.id, T0);
    expect(await recovery.use(user.id, codes[1]!.toUpperCase(), T0)).toEqual({ ok: true, remaining: 9 });
    expect(await recovery.use(user.id, ` ${codes[2]!.replaceAll('-', ' ')} `, T0)).toEqual({ ok: true, remaining: 8 });
    expect(await recovery.use(user.id, codes[3]!.replaceAll('-', ''), T0)).toEqual({ ok: true, remaining: 7 });
  });

  it('does not accept one account\'s code for another', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const codes = await recovery.generate(alice.id, T0);
    await recovery.generate(bob.id, T0);
    expect(await recovery.use(bob.id, codes[0]!, T0)).toEqual({ ok: false });
    expect(await recovery.remaining(bob.id)).toBe(10);
    expect(await recovery.use(alice.id, codes[0]!, T0)).toEqual({ ok: true, remaining: 9 });
  });

  it('accepts exactly one of ten parallel uses of one code', async () => {
    const user = await newUser();
    const codes = await recovery.generate(user.id, T0);
    const results = await Promise.all(Array.from({ length: 10 }, () => recovery.use(user.id, codes[4]!, T0)));
    expect(results.filter((r) => r.ok)).toEqual([{ ok: true, remaining: 9 }]);
    expect(results.filter((r) => !r.ok)).toHaveLength(9);
    expect(await recovery.remaining(user.id)).toBe(9);
  });

  it('a new set replaces the old one: every old code stops working', async () => {
    const user = await newUser();
    const old = await recovery.generate(user.id, T0);
    await recovery.use(user.id, old[0]!, T0);
    const fresh = await recovery.generate(user.id, later(1));
    expect(fresh.some((c) => old.includes(c))).toBe(false);
    expect(await recovery.remaining(user.id)).toBe(10);
    for (const code of old) expect(await recovery.use(user.id, code, later(1))).toEqual({ ok: false });
    expect(await recovery.use(user.id, fresh[0]!, later(1))).toEqual({ ok: true, remaining: 9 });
  });

  it('refuses malformed codes with ok: false, without throwing', async () => {
    const user = await newUser();
    const codes = await recovery.generate(user.id, T0);
    const malformed = ['', '   ', 'abcd', `${codes[0]!}a`, codes[0]!.slice(0, -1), codes[0]!.slice(0, -1) + '1', codes[0]!.slice(0, -1) + '0',
      'abcd_efgh_ijkl_mnop', "' or 1=1 --", 'é'.repeat(16), '\u0000'.repeat(16)];
    for (const code of malformed) expect(await recovery.use(user.id, code, T0), JSON.stringify(code)).toEqual({ ok: false });
    expect(await recovery.remaining(user.id)).toBe(10);
  });

  it('remove deletes every code of the account, used or not, and says how many', async () => {
    const user = await newUser();
    const other = await newUser();
    const codes = await recovery.generate(user.id, T0);
    await recovery.generate(other.id, T0);
    await recovery.use(user.id, codes[0]!, T0);
    expect(await recovery.remove(user.id)).toBe(10);
    expect(await recovery.remaining(user.id)).toBe(0);
    expect(await recovery.use(user.id, codes[1]!, T0)).toEqual({ ok: false });
    expect(await recovery.remove(user.id)).toBe(0);
    expect(await recovery.remaining(other.id)).toBe(10);
  });
});
