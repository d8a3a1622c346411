import { defineConfig } from 'vitest/config';

// Two projects: `unit` is the fast inner loop (no external processes); `e2e` drives real Envoy, OPA and the
// compiled servers, so it needs `npm run build` first and runs files one at a time (2-core CI machine).
export default defineConfig({
  test: {
    // One temporary directory per run, removed at the end (TOOLGATE_KEEP_TEST_TMP=1 keeps it).
    globalSetup: ['test/support/test-run-tmpdir.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
