// `raiment/eslint`: the ESLint rules that keep thread code deterministic, for any project's flat
// config. Code in threads/ must be deterministic apart from its calls through `this`, so these
// rules forbid, there only, what breaks that, and each message names the I/O library to use.
// Core ESLint rules only: no plugin to install (a TypeScript parser for .ts files, as usual).

const ioLib = (what, lib) =>
  `${what} in a thread is not recorded, so a resumed or replayed thread would differ: use this.${lib} (add '${lib}' to uses).`

/** The rules, by name, for a config block of your own. */
export const rules = {
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
    { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'process.env differs between runs: pass configuration in the thread params, or read it with this.env.get(name) (and a secret with this.env.secret(name), kept out of the journal).' },
  ],
}

/** The files the rules apply to by default: every module under threads/. */
export const THREAD_FILES = ['threads/**/*.{ts,js,mts,mjs}']

/**
 * A flat-config block applying the rules to thread files.
 * @param {{ files?: string[] }} [options] `files`: globs of your thread files (default `threads/**`)
 * @example
 * // eslint.config.js
 * import { threads } from 'raiment/eslint'
 * export default [...yourConfig, threads()]
 */
export function threads(options = {}) {
  return { name: 'raiment/threads', files: options.files ?? THREAD_FILES, rules }
}
