#!/usr/bin/env node
// The `raiment` command. Before anything of the user's is imported, it registers tsx's loader
// (thread types and I/O libraries may be written in TypeScript) and its own resolve hooks
// (resolve-hooks.js: `raiment` is this package wherever a thread file lies).
import { existsSync } from 'node:fs'
import { register as registerHooks } from 'node:module'
import { register } from 'tsx/esm/api'

register()
// src/loader.ts registers tsx itself unless this is set.
globalThis[Symbol.for('raiment.typescript-loader')] = true
// A checkout of the repository (it has a tsconfig.json, which the package does not ship), or a
// package that has not been built, runs its TypeScript sources, as `node --conditions=raiment-source`
// does: never a dist/ older than the sources.
const source = existsSync(new URL('../tsconfig.json', import.meta.url)) || !existsSync(new URL('../dist/src/cli/main.js', import.meta.url))
registerHooks('./resolve-hooks.js', import.meta.url, { data: { self: import.meta.url, source } })
const { main } = await import('raiment/cli')
process.exitCode = await main(process.argv.slice(2))
