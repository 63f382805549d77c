import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import type { Store } from '../../src/platform/db/database.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { AccessTokenDenylist, ClientAssertionJtis, RevokedGrantsTable } from '../../src/oauth/revocation-state.js';
import { openTestStore } from '../support/store.js';

describe('token state tables', () => {
  let store: Store;
  beforeAll(async () => { store = await openTestStore(); await migrate(store.db, migrations); });
  afterAll(async () => { await store.close(); });

  const t = (iso: string) => new Date(`2026-01-01T${iso}Z`);

  it('records a revoked jti once and purges it after its exp', async () => {
    const denylist = new AccessTokenDenylist(store.db);
    await denylist.add('jti-1', 'svc', t('00:10:00'));
    await denylist.add('jti-1', 'svc', t('00:10:00'));
    expect(await denylist.isRevoked('jti-1')).toBe(true);
    expect(await denylist.isRevoked('jti-2')).toBe(false);
    expect(await denylist.purgeExpired(t('00:05:00'))).toBe(0);
    expect(await denylist.purgeExpired(t('00:10:01'))).toBe(1);
    expect(await denylist.isRevoked('jti-1')).toBe(false);
  });

  it('says whether a jti was denylisted by this call', async () => {
    const denylist = new AccessTokenDenylist(store.db);
    expect(await denylist.add('jti-3', 'svc', t('00:10:00'))).toBe(true);
    expect(await denylist.add('jti-3', 'svc', t('00:10:00'))).toBe(false);
  });

  it('revokes a grant once among concurrent revocations, keeping the first reason and the latest expiry', async () => {
    const grants = new RevokedGrantsTable(store.db, () => t('00:00:00'));
    const added = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      grants.add('grant-1', 'web', t(`00:1${i}:00`), i === 0 ? 'authorization_code_replayed' : 'refresh_token_reused')));
    expect(added.filter(Boolean)).toHaveLength(1);
    const row = await store.db.selectFrom('revoked_grants').selectAll().where('grant_id', '=', 'grant-1').executeTakeFirstOrThrow();
    expect(row.expires_at).toEqual(t('00:19:00'));
    expect(await grants.add('grant-1', 'web', t('00:05:00'), 'revoked_by_client')).toBe(false);
    expect(await store.db.selectFrom('revoked_grants').select(['expires_at', 'reason']).where('grant_id', '=', 'grant-1').executeTakeFirstOrThrow())
      .toEqual({ expires_at: t('00:19:00'), reason: row.reason });
  });

  it('accepts an assertion jti once per client; a second use conflicts until it expires', async () => {
    let now = t('00:00:00');
    const jtis = new ClientAssertionJtis(store.db, () => now);
    expect(await jtis.consume('a', 'h1', t('00:01:00'))).toBe(true);
    expect(await jtis.consume('a', 'h1', t('00:01:00'))).toBe(false);
    expect(await jtis.consume('b', 'h1', t('00:01:00'))).toBe(true);
    const racing = await Promise.all([jtis.consume('a', 'h2', t('00:01:00')), jtis.consume('a', 'h2', t('00:01:00'))]);
    expect(racing.sort()).toEqual([false, true]);
    now = t('00:02:00');
    expect(await jtis.consume('a', 'h1', t('00:03:00'))).toBe(true); // the old entry had expired
    expect(await jtis.purgeExpired(t('00:02:00'))).toBe(2); // b/h1 and a/h2
  });
});
