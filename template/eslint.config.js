// ESLint for the project. `raiment/eslint` keeps threads/ deterministic: it flags what a replay
// could not reproduce there (Date.now(), Math.random(), timers, node:fs, …) and names the I/O
// library to use instead.
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'
import { threads } from 'raiment/eslint'

export default defineConfig({ ignores: ['node_modules/', 'dist/', 'dumps/'] }, tseslint.configs.recommended, threads())
