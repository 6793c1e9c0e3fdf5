#!/usr/bin/env node
// The `raiment` command. Thread types and I/O libraries may be written in TypeScript, so a
// TypeScript loader is registered before anything of the user's is imported.
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
// In a clone that has not been built (no dist/), `raiment` resolves to its TypeScript sources,
// as with `node --conditions=development`.
if (!existsSync(new URL('../dist/src/cli/main.js', import.meta.url))) {
  const hook = `export async function resolve(s, c, next) {
    return next(s, c.conditions.includes('development') ? c : { ...c, conditions: [...c.conditions, 'development'] })
  }`
  registerHooks('data:text/javascript,' + encodeURIComponent(hook))
}
const { main } = await import('raiment/cli')
process.exitCode = await main(process.argv.slice(2))
