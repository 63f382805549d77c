import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file runs in its own process with its own store (in-memory PGlite, or its own schema
    // on the Postgres named by DATABASE_URL), so files never share state.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // 2-core machines: more workers than cores only adds contention.
    maxWorkers: 2,
  },
});
