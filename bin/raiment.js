#!/usr/bin/env node
// The `raiment` command. Thread types and I/O libraries may be written in TypeScript, so a
// TypeScript loader is registered before anything of the user's is imported.
import { existsSync } from 'node:fs'
import { register as registerHooks } from 'node:module'
import { register } from 'tsx/esm/api'

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
