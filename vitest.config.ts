import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Suites start real servers, containers and etcd; two cores do not like more at once.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
