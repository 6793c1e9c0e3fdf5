// Type-checked ESLint. Code in threads/ must be deterministic apart from its weft calls, so the
// last block forbids, there only, what breaks that, and each message names the library to use.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const ioLib = (what, lib) => `${what} in a thread is not recorded, so a resumed or replayed thread would differ: use this.${lib} (add '${lib}' to uses).`

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'scratch/', 'bench/compare/node_modules/', 'bench/results/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.js'] }, tsconfigRootDir: import.meta.dirname },
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
  {
    files: ['threads/**/*.{ts,js,mts,mjs}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...['fs', 'node:fs', 'fs/promises', 'node:fs/promises'].map((name) => ({ name, message: ioLib('File access', 'fs') })),
            ...['net', 'node:net', 'http', 'node:http', 'https', 'node:https', 'dgram', 'node:dgram'].map((name) => ({ name, message: ioLib('Network access', 'fetch') })),
            { name: 'better-sqlite3', message: ioLib('A database', 'sqlite') },
            { name: 'amqplib', message: ioLib('A broker connection', 'mailbox') },
            ...['child_process', 'node:child_process'].map((name) => ({ name, message: 'Processes cannot be recorded: do this in an I/O library in io-libs/.' })),
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: ioLib('Date.now()', 'clock') + ' (this.clock.now())' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: ioLib('new Date() without arguments', 'clock') + ' (new Date(await this.clock.now()))' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: ioLib('Math.random()', 'random') },
        { selector: "CallExpression[callee.object.name='crypto'][callee.property.name=/^(randomUUID|getRandomValues)$/]", message: ioLib('crypto randomness', 'random') },
        { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: ioLib('performance.now()', 'clock') },
        { selector: "CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate)$/]", message: ioLib('A timer', 'clock') + ' (this.clock.sleep(ms))' },
        { selector: "CallExpression[callee.name='fetch']", message: ioLib('fetch()', 'fetch') },
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'process.env differs between runs: pass configuration in the thread params.' },
      ],
    },
  },
)
