#!/usr/bin/env node
// The `raiment` command. Before anything of the user's is imported, it registers tsx's loader
// (thread types and I/O libraries may be written in TypeScript) and its own resolve hooks
// (resolve-hooks.js: `raiment` is this package wherever a thread file lies).
import { existsSync } from 'node:fs'
import { register as registerHooks } from 'node:module'
import { register } from 'tsx/esm/api'

// A broker password typed on the command line (--amqp amqp://user:PASSWORD@host) is hidden from
// what other users see of this process (/proc/PID/cmdline, ps), as the MySQL client does.
const secret = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):[^\s@/]*@/i
if (process.argv.some((a) => secret.test(a))) {
  process.title = [process.argv0, ...process.execArgv, ...process.argv.slice(1)].join(' ').replace(new RegExp(secret, 'gi'), '$1:***@')
}
register()
// src/loader.ts registers tsx itself unless this is set.
globalThis[Symbol.for('raiment.typescript-loader')] = true
// A checkout of the repository (it has a tsconfig.json, which the package does not ship), or a
// package that has not been built, runs its TypeScript sources, as `node --conditions=raiment-source`
// does: never a dist/ older than the sources.
const source = existsSync(new URL('../tsconfig.json', import.meta.url)) || !existsSync(new URL('../dist/src/cli/main.js', import.meta.url))
registerHooks('./resolve-hooks.js', import.meta.url, { data: { self: import.meta.url, source } })
// src/loader.ts: a file with no package.json above it is an ES module here (resolve-hooks.js),
// so its failure is its own, never CommonJsModule.
globalThis[Symbol.for('raiment.esm-outside-packages')] = true
const { main } = await import('raiment/cli')
process.exitCode = await main(process.argv.slice(2))
