import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: { conditions: ['raiment-source'] },
  ssr: { resolve: { conditions: ['raiment-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time: most of a file's time is spent waiting (fsyncs, the broker, child
    // processes starting), so two share the 2 cores of the CI machine well (a full run took
    // 740 s instead of 1,028 s on a loaded machine, every test passing).
    maxWorkers: 2,
  },
})
