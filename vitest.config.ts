import { defineConfig } from 'vitest/config';

// The embedded ClickHouse engine (chdb) is a native library bound to one data
// folder per process: it crashes under worker threads, so every test file runs
// in its own forked process.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.data/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['./test/global-setup.ts'],
  },
});
