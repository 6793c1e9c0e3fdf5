#!/usr/bin/env node
// The `raiment` command. Thread types and I/O libraries may be written in TypeScript, so a
// TypeScript loader is registered before anything of the user's is imported.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('raiment/cli')
process.exitCode = await main(process.argv.slice(2))
