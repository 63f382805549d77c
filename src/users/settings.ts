import { defineSlice, integer, setting, type SliceValues } from '../platform/config/settings.js';

/** User passwords: the argon2id cost (read as `argon2`) and the shortest password accepted. */
export const passwordSettings = defineSlice({
  name: 'passwords',
  settings: {
    passwordMinLength: setting('PASSWORD_MIN_LENGTH', integer(8, 128).default(12).describe('Shortest password accepted when one is set (NIST SP 800-63B: length, no composition rules).')),
    // OWASP Password Storage Cheat Sheet's argon2id floor: m=19 MiB, t=2, p=1 (~20 ms a hash on one core here).
    argon2MemoryKib: setting('ARGON2_MEMORY_KIB', integer(8192, 4 * 1024 * 1024).default(19456).describe('argon2id memory cost for user passwords, in KiB. Hashes made with other parameters are upgraded at the next successful login.')),
    argon2TimeCost: setting('ARGON2_TIME_COST', integer(1, 20).default(2).describe('argon2id iterations for user passwords.')),
    argon2Parallelism: setting('ARGON2_PARALLELISM', integer(1, 16).default(1).describe('argon2id lanes for user passwords.')),
  },
  finish: ({ argon2MemoryKib, argon2TimeCost, argon2Parallelism, ...values }) => ({
    ...values,
    argon2: { memoryCost: argon2MemoryKib, timeCost: argon2TimeCost, parallelism: argon2Parallelism },
  }),
});
export type PasswordSettings = SliceValues<typeof passwordSettings>;
