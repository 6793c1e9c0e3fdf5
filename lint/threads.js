// `raiment/eslint`: the ESLint rules that keep thread code deterministic, for any project's flat
// config. Code in threads/ must be deterministic apart from its calls through `this`, so these
// rules forbid, there only, what breaks that, and each message names the I/O library to use.
// Core ESLint rules only: no plugin to install (a TypeScript parser for .ts files, as usual).

const ioLib = (what, lib) =>
  `${what} in a thread is not recorded, so a resumed or replayed thread would differ: use this.${lib} (add '${lib}' to uses).`

const PROCESS_ENV = 'process.env differs between runs: pass configuration in the thread params, or read it with this.env.get(name) (and a secret with this.env.secret(name), kept out of the journal).'
const IO_LIB_MODULE =
  "An I/O library's module called from a thread is not recorded, so a resumed or replayed thread would differ: use this.NAME, NAME being the library's file name in io-libs/ (add it to uses); import only its types here (import type)."
/** node:crypto's functions whose results differ between runs. */
const RANDOM_FUNCTIONS = ['randomUUID', 'randomBytes', 'getRandomValues', 'randomInt', 'randomFill', 'randomFillSync']
/** The names of the global object, in a selector. */
// (Not `self`: a thread's `const self = this` is common.)
const GLOBAL_OBJECT = '/^(globalThis|global|window)$/'

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
        ...['timers', 'node:timers', 'timers/promises', 'node:timers/promises'].map((name) => ({ name, message: ioLib('A timer', 'clock') + ' (this.clock.sleep(ms))' })),
        ...['crypto', 'node:crypto'].map((name) => ({ name, importNames: RANDOM_FUNCTIONS, message: ioLib('crypto randomness', 'random') })),
      ],
    },
  ],
  'no-restricted-syntax': [
    'error',
    { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: ioLib('Date.now()', 'clock') + ' (this.clock.now())' },
    { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: ioLib('new Date() without arguments', 'clock') + ' (new Date(await this.clock.now()))' },
    { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: ioLib('Math.random()', 'random') },
    // Whatever the module's default import is named (import c from 'node:crypto'; c.randomBytes(8)); through the global object below.
    // Not a method of a library of the thread's (this.ids.randomUUID()): its calls are recorded.
    { selector: `CallExpression[callee.property.name=/^(${RANDOM_FUNCTIONS.join('|')})$/]:not([callee.object.object.name=${GLOBAL_OBJECT}]):not([callee.object.object.type='ThisExpression'])`, message: ioLib('crypto randomness', 'random') },
    { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: ioLib('performance.now()', 'clock') },
    { selector: "CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate)$/]", message: ioLib('A timer', 'clock') + ' (this.clock.sleep(ms))' },
    { selector: "CallExpression[callee.name='fetch']", message: ioLib('fetch()', 'fetch') },
    { selector: "MemberExpression[object.name='process'][property.name='env']", message: PROCESS_ENV },
    { selector: "VariableDeclarator[init.name='process'] > ObjectPattern > Property[key.name='env']", message: PROCESS_ENV },
    { selector: "CallExpression[callee.type='Identifier'][callee.name='Date']", message: ioLib('Date() called as a function', 'clock') + ' (new Date(await this.clock.now()))' },
    { selector: "MemberExpression[object.name='process'][property.name='hrtime']", message: ioLib('process.hrtime()', 'clock') },
    { selector: "VariableDeclarator[init.name='process'] > ObjectPattern > Property[key.name='hrtime']", message: ioLib('process.hrtime()', 'clock') },
    // The same globals reached through the global object.
    { selector: `MemberExpression[object.name=${GLOBAL_OBJECT}][property.name=/^(setTimeout|setInterval|setImmediate)$/]`, message: ioLib('A timer', 'clock') + ' (this.clock.sleep(ms))' },
    { selector: `MemberExpression[object.name=${GLOBAL_OBJECT}][property.name='fetch']`, message: ioLib('fetch()', 'fetch') },
    { selector: `MemberExpression[object.name=${GLOBAL_OBJECT}][property.name='performance']`, message: ioLib('performance.now()', 'clock') },
    { selector: `MemberExpression[object.object.name=${GLOBAL_OBJECT}][object.property.name='crypto'][property.name=/^(randomUUID|getRandomValues)$/]`, message: ioLib('crypto randomness', 'random') },
    { selector: `MemberExpression[object.object.name=${GLOBAL_OBJECT}][object.property.name='process'][property.name='env']`, message: PROCESS_ENV },
    // What the imports above forbid, imported at run time.
    { selector: "ImportExpression[source.value=/^(node:)?fs(\\/promises)?$/]", message: ioLib('File access', 'fs') },
    { selector: "ImportExpression[source.value=/^(node:)?(net|http|https|dgram)$/]", message: ioLib('Network access', 'fetch') },
    { selector: "ImportExpression[source.value=/^(node:)?timers(\\/promises)?$/]", message: ioLib('A timer', 'clock') + ' (this.clock.sleep(ms))' },
    { selector: "ImportExpression[source.value=/^(node:)?crypto$/]", message: ioLib('crypto randomness', 'random') },
    { selector: "ImportExpression[source.value='better-sqlite3']", message: ioLib('A database', 'sqlite') },
    { selector: "ImportExpression[source.value=/^(node:)?child_process$/]", message: 'Processes cannot be recorded: do this in an I/O library in io-libs/.' },
    // An I/O library's module called directly from a thread: its calls bypass the journal. Its types may be imported.
    // The library object or its functions; a class (an error to test with instanceof) may be imported.
    { selector: "ImportDeclaration[source.value=/(^|\\/)io-libs\\//][importKind!='type'] > :matches(ImportDefaultSpecifier, ImportNamespaceSpecifier, ImportSpecifier[importKind!='type'][imported.name=/^[^A-Z]/])", message: IO_LIB_MODULE },
    { selector: "ImportExpression[source.value=/(^|\\/)io-libs\\//]", message: IO_LIB_MODULE },
    // A receive that loses a race goes on waiting, and takes the next message, which the thread never sees.
    {
      selector: "CallExpression[callee.object.name='Promise'][callee.property.name=/^(race|any)$/] CallExpression[callee.property.name='receive']",
      message:
        'A mailbox.receive raced against another wait (Promise.race) goes on waiting when it loses, and takes the next message, which the thread never sees: use mailbox.receive({ timeout }) (TIMED_OUT when the time is up) instead.',
    },
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
