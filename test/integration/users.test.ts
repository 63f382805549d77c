import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import type { Store } from '../../src/platform/db/database.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { UserExists, UserRepository } from '../../src/users/user-store.js';
import { openTestStore } from '../support/store.js';

describe('user repository', () => {
  let store: Store;
  let users: UserRepository;
  const now = new Date('2026-05-01T00:00:00Z');
  beforeAll(async () => {
    store = await openTestStore();
    await migrate(store.db, migrations);
    users = new UserRepository(store.db);
  });
  afterAll(async () => { await store.close(); });

  it('creates a user with a stable sub and profile claims', async () => {
    const u = await users.create({ username: 'Alice', email: 'Alice@Example.com', profile: { name: 'Alice L' }, address: { country: 'GB' } }, now);
    expect(u.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(u.profile).toEqual({ name: 'Alice L' });
    expect(u.address).toEqual({ country: 'GB' });
    expect(u.disabled).toBe(false);
    expect((await users.findById(u.id))?.username).toBe('Alice');
  });

  it('finds a user by username or email regardless of case', async () => {
    expect((await users.findByLogin('alice'))?.username).toBe('Alice');
    expect((await users.findByLogin('ALICE@example.COM'))?.username).toBe('Alice');
    expect(await users.findByLogin('nobody')).toBeUndefined();
  });

  it('refuses a second user with the same username or email in another case', async () => {
    await expect(users.create({ username: 'ALICE' }, now)).rejects.toThrow(UserExists);
    await expect(users.create({ username: 'alice2', email: 'alice@example.com' }, now)).rejects.toThrow(UserExists);
  });

  it('prefers a username match over another user whose email is that string', async () => {
    await users.create({ username: 'bob@example.com' }, now);
    await users.create({ username: 'robert', email: 'bob@example.com' }, now);
    expect((await users.findByLogin('bob@example.com'))?.username).toBe('bob@example.com');
  });

  it('upgrades a password hash only if it is still the verified one', async () => {
    const u = await users.create({ username: 'carol', password_hash: 'h1' }, now);
    await users.setPasswordHash(u.id, 'h2', now); // changed by an admin meanwhile
    await users.upgradePasswordHash(u.id, 'h1', 'h1-upgraded');
    expect((await users.findById(u.id))?.password_hash).toBe('h2');
    await users.upgradePasswordHash(u.id, 'h2', 'h2-upgraded');
    expect((await users.findById(u.id))?.password_hash).toBe('h2-upgraded');
  });

  it('disables and enables a user', async () => {
    const u = await users.create({ username: 'dave' }, now);
    expect(await users.setDisabled(u.id, true, now)).toBe(true);
    expect((await users.findById(u.id))?.disabled).toBe(true);
    expect(await users.setDisabled('00000000-0000-0000-0000-000000000000', true, now)).toBe(false);
  });
});
