import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: { conditions: ['raiment-source'] },
  ssr: { resolve: { conditions: ['raiment-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
