// Type-checked ESLint. Code in threads/ must be deterministic apart from its weft calls, so the
// last block (lint/threads.js) forbids, there only, what breaks that, and each message names the
// library to use.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import { threads } from './lint/threads.js'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'scratch/', '.scratch*/', 'bench/compare/node_modules/', 'bench/results/', 'coverage/', 'template/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'lint/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // I/O library methods are async by contract even when they have nothing to await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  // The UI's client runs in the browser (src/ui/assets, served as they are).
  {
    files: ['src/ui/assets/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'history', 'fetch', 'localStorage', 'EventSource', 'HTMLSelectElement', 'confirm'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  // The determinism rules for threads/, shipped to users' projects as `raiment/eslint`.
  threads(),
)
