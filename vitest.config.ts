import { defineConfig } from 'vitest/config';

const exclude = ['**/node_modules/**', '**/.ferry/**'];

/**
 * Test tiers by file name (STYLE.md 7): `*.unit.test.ts` does no I/O; `*.int.test.ts` talks to
 * a real PostgreSQL (the embedded server unless FERRY_TEST_POSTGRES_URL names one) or a real
 * broker; `*.e2e.test.ts` runs whole processes. One database server per run, a database per test file.
 */
const reportDir = process.env.FERRY_TEST_REPORT_DIR;

export default defineConfig({
  test: {
    // CI asks for a JSON report per run, to print one closing line for all of them.
    reporters: reportDir
      ? ['default', ['json', { outputFile: `${reportDir}/vitest-${process.pid}.json` }]]
      : ['default'],
    // Two cores: more workers only fight over them and over the one database server.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/**/*.unit.test.ts', 'services/**/*.unit.test.ts', 'examples/**/*.unit.test.ts'],
          exclude,
        },
      },
      {
        test: {
          name: 'int',
          include: ['packages/**/*.int.test.ts', 'services/**/*.int.test.ts', 'examples/**/*.int.test.ts'],
          exclude,
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['packages/**/*.e2e.test.ts', 'services/**/*.e2e.test.ts', 'test/**/*.e2e.test.ts'],
          exclude,
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 120_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
