import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import type { Store } from '../../src/platform/db/database.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { ConsentRepository } from '../../src/oauth/consent-store.js';
import { UserRepository } from '../../src/users/user-store.js';
import { openTestStore } from '../support/store.js';

describe('consent decisions', () => {
  let store: Store;
  let consents: ConsentRepository;
  let userId: string;
  const now = new Date('2026-06-01T00:00:00Z');
  beforeAll(async () => {
    store = await openTestStore();
    await migrate(store.db, migrations);
    consents = new ConsentRepository(store.db);
    userId = (await new UserRepository(store.db).create({ username: 'alice' }, now)).id;
  });
  afterAll(async () => { await store.close(); });

  it('has nothing granted before the first decision', async () => {
    expect(await consents.grantedScopes(userId, 'app')).toEqual(new Set());
  });

  it('adds a later grant to the earlier one, per client', async () => {
    await consents.grant(userId, 'app', ['openid', 'profile'], now);
    expect(await consents.grant(userId, 'app', ['email', 'openid'], now)).toEqual(new Set(['openid', 'profile', 'email']));
    expect(await consents.grantedScopes(userId, 'app')).toEqual(new Set(['openid', 'profile', 'email']));
    expect(await consents.grantedScopes(userId, 'other-app')).toEqual(new Set());
  });

  it('counts two grants made at the same moment', async () => {
    await Promise.all([consents.grant(userId, 'racy', ['a'], now), consents.grant(userId, 'racy', ['b'], now)]);
    expect(await consents.grantedScopes(userId, 'racy')).toEqual(new Set(['a', 'b']));
  });

  it('withdraws consent', async () => {
    expect(await consents.revoke(userId, 'app')).toBe(true);
    expect(await consents.grantedScopes(userId, 'app')).toEqual(new Set());
    expect(await consents.revoke(userId, 'app')).toBe(false);
  });
});
