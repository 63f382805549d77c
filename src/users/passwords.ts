import argon2 from 'argon2';

/**
 * Human passwords only (client secrets are server-generated and hashed with SHA-256). argon2id
 * with the configured cost; `verify` always does one full argon2 computation — against a dummy
 * hash when there is no user — so an unknown username costs the same time as a wrong password.
 */
export interface PasswordPolicy {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
  minLength: number;
}

/** Longest password accepted: long enough for any passphrase, short enough to bound the work. */
export const PASSWORD_MAX_LENGTH = 1024;

export class PasswordRejected extends Error {}

export interface PasswordHasher {
  /** Checks length rules, then hashes; throws PasswordRejected with a user-facing reason. */
  hash(password: string): Promise<string>;
  /**
   * Verifies `password` against `hash`, or against the dummy hash when `hash` is null. Returns
   * whether it matched and whether the stored hash should be replaced (parameters changed).
   */
  verify(hash: string | null, password: string): Promise<{ ok: boolean; rehash: boolean }>;
}

export async function createPasswordHasher(policy: PasswordPolicy): Promise<PasswordHasher> {
  const options = { type: argon2.argon2id, memoryCost: policy.memoryCost, timeCost: policy.timeCost, parallelism: policy.parallelism } as const;
  const dummy = await argon2.hash('latchkey-dummy-password-for-unknown-users', options);
  return {
    async hash(password) {
      if (password.length < policy.minLength) throw new PasswordRejected(`password must be at least ${policy.minLength} characters`);
      if (password.length > PASSWORD_MAX_LENGTH) throw new PasswordRejected(`password must be at most ${PASSWORD_MAX_LENGTH} characters`);
      return argon2.hash(password, options);
    },
    async verify(hash, password) {
      // Over-long input is refused after the same amount of work, not before it.
      const candidate = password.length > PASSWORD_MAX_LENGTH ? '' : password;
      let ok = false;
      try {
        ok = await argon2.verify(hash ?? dummy, candidate);
      } catch {
        ok = false; // a malformed stored hash never authenticates
      }
      ok = ok && hash !== null && password.length <= PASSWORD_MAX_LENGTH;
      return { ok, rehash: ok && argon2.needsRehash(hash!, options) };
    },
  };
}
