import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';

/**
 * The sign-in throttle (OWASP ASVS 2.2.1, NIST SP 800-63B §5.2.2): guessing slows down per
 * account, whichever login names it, without letting a stranger lock the owner out of a browser
 * or an address the owner signed in from before. Addresses are documentation ranges (RFC 5737).
 */
describe('the sign-in throttle', () => {
  let app: TestApp;
  const clock = new ManualClock();
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 }, { clock });
    for (const name of ['grace', 'ivan', 'judy', 'mike', 'nina', 'olga', 'pat', 'quinn', 'rita', 'sara']) await createUser(app.context, name);
  });
  afterAll(async () => { await app.close(); });

  /** `count` wrong passwords for `login`, each from a browser and address of its own. */
  async function strangersFail(login: string, count: number, from = 1): Promise<void> {
    for (let i = 0; i < count; i++) expect((await new Browser(app, `203.0.113.${from + i}`).signIn(login, `wrong guess ${i}`)).statusCode).toBe(401);
  }

  it('counts failures per account, whether they name it by username or e-mail address', async () => {
    await strangersFail('grace', 3, 1);
    await strangersFail('GRACE@example.com', 2, 4);
    await strangersFail('grace', 1, 6); // the 6th failure of this account: blocked 2 s
    const res = await new Browser(app, '203.0.113.7').signIn('grace@example.com', PASSWORD);
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('2');
  });

  it('does not let strangers lock the owner out of a browser that signed in before, from any address', async () => {
    const owner = new Browser(app, '198.51.100.7');
    expect((await owner.signIn('ivan', PASSWORD)).statusCode).toBe(303);
    await strangersFail('ivan', 6, 20); // the account is blocked for strangers
    expect((await new Browser(app, '192.0.2.99').signIn('ivan', PASSWORD)).statusCode).toBe(429);
    // The owner's browser, even from a new address (a phone on another network), is let through.
    const roaming = new Browser(app, '192.0.2.50');
    roaming.cookies = new Map(owner.cookies);
    expect((await roaming.signIn('ivan', PASSWORD)).statusCode).toBe(303);
    expect((await owner.signIn('ivan@example.com', PASSWORD)).statusCode).toBe(303);
    // Strangers are still blocked: the owner's success cleared only the owner's own counter.
    expect((await new Browser(app, '192.0.2.98').signIn('ivan', PASSWORD)).statusCode).toBe(429);
  });

  it('does not let strangers lock the owner out of an address the owner signed in from before', async () => {
    expect((await new Browser(app, '198.51.100.8').signIn('judy', PASSWORD)).statusCode).toBe(303);
    await strangersFail('judy', 6, 40);
    expect((await new Browser(app, '192.0.2.97').signIn('judy', PASSWORD)).statusCode).toBe(429);
    // Another browser (no cookie) at the address Judy signed in from: not blocked by the strangers.
    expect((await new Browser(app, '198.51.100.8').signIn('judy', PASSWORD)).statusCode).toBe(303);
  });

  it('gives a known browser an allowance of its own: its failures block it, not the account for everyone else', async () => {
    const owner = new Browser(app, '198.51.100.9');
    expect((await owner.signIn('mike', PASSWORD)).statusCode).toBe(303);
    const elsewhere = new Browser(app, '198.51.100.10');
    elsewhere.cookies = new Map(owner.cookies);
    for (let i = 0; i < 6; i++) expect((await elsewhere.signIn('mike', `wrong guess ${i}`)).statusCode).toBe(401);
    expect((await elsewhere.signIn('mike', PASSWORD)).statusCode).toBe(429); // this browser: 5 free failures, then blocked
    expect((await new Browser(app, '192.0.2.96').signIn('mike', PASSWORD)).statusCode).toBe(303); // the account, elsewhere: not
  });

  it("trusts no cookie but a valid one for the same account: a forged one, or another account's, counts as a stranger", async () => {
    const owner = new Browser(app, '198.51.100.11');
    expect((await owner.signIn('nina', PASSWORD)).statusCode).toBe(303);
    const device = owner.cookies.get('latchkey_device')!;
    expect(device).toBeDefined();
    await strangersFail('nina', 6, 60);
    await strangersFail('olga', 6, 70);
    const withCookie = (value: string, address: string) => {
      const b = new Browser(app, address);
      b.cookies.set('latchkey_device', value);
      return b;
    };
    const forged = `${device.slice(0, -2)}${device.endsWith('AA') ? 'BB' : 'AA'}`;
    expect((await withCookie(forged, '192.0.2.94').signIn('nina', PASSWORD)).statusCode).toBe(429);
    expect((await withCookie(device, '192.0.2.95').signIn('olga', PASSWORD)).statusCode).toBe(429);
    expect((await withCookie(device, '192.0.2.93').signIn('nina', PASSWORD)).statusCode).toBe(303);
  });

  it('sets the known-device cookie on success: HttpOnly, SameSite=Lax, for LOGIN_KNOWN_TTL (90 days)', async () => {
    const res = await new Browser(app, '198.51.100.12').signIn('pat', PASSWORD);
    const cookie = (res.cookies as Array<Record<string, unknown>>).find((c) => c.name === 'latchkey_device');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', maxAge: 90 * 86400 });
  });

  it('keeps the per-address limit for a known browser too', async () => {
    const owner = new Browser(app, '198.51.100.13');
    expect((await owner.signIn('quinn', PASSWORD)).statusCode).toBe(303);
    // 21 failures from the address on unknown names: the address is blocked (20 free).
    for (let i = 0; i < 21; i++) expect((await new Browser(app, '198.51.100.13').signIn(`nobody-${i}`, 'x')).statusCode).toBe(401);
    expect((await owner.signIn('quinn', PASSWORD)).statusCode).toBe(429);
  });

  it('allows an account 100 failures over all its allowances, then none for an hour (ASVS 2.2.1)', async () => {
    const owner = new Browser(app, '198.51.100.20');
    expect((await owner.signIn('rita', PASSWORD)).statusCode).toBe(303);
    // Twenty networks Rita used, five free failures from each: 100 failures, none delayed.
    for (let n = 1; n <= 20; n++) expect((await new Browser(app, `198.18.0.${n}`).signIn('rita', PASSWORD)).statusCode).toBe(303);
    for (let n = 1; n <= 20; n++) {
      for (let i = 0; i < 5; i++) expect((await new Browser(app, `198.18.0.${n}`).signIn('rita', `wrong guess ${i}`)).statusCode).toBe(401);
    }
    const blocked = await owner.signIn('rita', PASSWORD);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBe('3600');
    clock.advance(3600);
    expect((await owner.signIn('rita', PASSWORD)).statusCode).toBe(303);
  });

  it('never lets strangers reach the account cap, however long they keep failing at the rate their allowance allows', async () => {
    const owner = new Browser(app, '198.51.100.30');
    expect((await owner.signIn('sara', PASSWORD)).statusCode).toBe(303);
    // Five hours of strangers' best pace: twelve failures (waiting out each delay), then just over
    // 15 quiet minutes so the account's counter starts again — about 40 failures an hour.
    let failures = 0;
    let waits = 0;
    for (const end = clock.now().getTime() + 5 * 3600_000; clock.now().getTime() < end;) {
      for (let i = 0; i < 12; i++) {
        // A new address each time: the per-address request limits (counted in real time) never bite.
        const res = await new Browser(app, `192.0.2.${(failures + waits) % 250 + 1}`).signIn('sara', `wrong guess ${failures}`);
        if (res.statusCode === 429) { waits++; clock.advance(Number(res.headers['retry-after'])); i--; continue; }
        expect(res.statusCode).toBe(401);
        failures++;
      }
      clock.advance(901);
    }
    expect(failures).toBeGreaterThan(150);
    // The owner's browser was never locked out.
    expect((await owner.signIn('sara', PASSWORD)).statusCode).toBe(303);
  });

  it('forgets an address LOGIN_KNOWN_TTL after the last sign-in from it (the cleanup job deletes the row)', async () => {
    const judy = () => app.context.store.db.selectFrom('known_sign_in_addresses').select('address').where('address', '=', '198.51.100.8').execute();
    expect(await judy()).toEqual([{ address: '198.51.100.8' }]);
    clock.advance(90 * 86400 + 1);
    await app.services.runCleanup();
    expect(await judy()).toEqual([]);
  });
});
