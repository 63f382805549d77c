import { describe, expect, it } from 'vitest';
import { createPasswordHasher, PasswordRejected } from '../../src/users/passwords.js';

// Cheap parameters: these tests check behaviour, not cost.
const policy = { memoryCost: 8192, timeCost: 1, parallelism: 1, minLength: 12 };

describe('user passwords (argon2id)', () => {
  it('hashes with argon2id and the configured parameters', async () => {
    const hasher = await createPasswordHasher(policy);
    const hash = await hasher.hash('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=8192,p=1,t=1\$/);
    expect(await hasher.verify(hash, 'correct horse battery')).toEqual({ ok: true, rehash: false });
    expect(await hasher.verify(hash, 'correct horse batterY')).toEqual({ ok: false, rehash: false });
  });

  it('never authenticates an unknown user, yet does the same work (dummy hash)', async () => {
    const hasher = await createPasswordHasher(policy);
    expect(await hasher.verify(null, 'latchkey-dummy-password-for-unknown-users')).toEqual({ ok: false, rehash: false });
  });

  it('rejects passwords shorter than the minimum or longer than 1024', async () => {
    const hasher = await createPasswordHasher(policy);
    await expect(hasher.hash('short')).rejects.toThrow(new PasswordRejected('password must be at least 12 characters'));
    await expect(hasher.hash('x'.repeat(1025))).rejects.toThrow(new PasswordRejected('password must be at most 1024 characters'));
  });

  it('asks for a rehash when the stored hash used other parameters', async () => {
    const old = await (await createPasswordHasher(policy)).hash('correct horse battery');
    const stronger = await createPasswordHasher({ ...policy, timeCost: 2 });
    expect(await stronger.verify(old, 'correct horse battery')).toEqual({ ok: true, rehash: true });
  });

  it('treats a malformed stored hash as a failed match', async () => {
    const hasher = await createPasswordHasher(policy);
    expect(await hasher.verify('not-a-hash', 'correct horse battery')).toEqual({ ok: false, rehash: false });
  });
});
