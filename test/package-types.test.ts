/**
 * Raiment's published .d.ts files import the types of its dependencies (Weave's `journal.db` is a
 * better-sqlite3 Database; raiment/broker's connection an amqplib one). A dependency that ships
 * no types of its own needs its @types package among `dependencies`, or a project that type-checks
 * its libraries (`skipLibCheck: false`) gets TS7016 in Raiment's own .d.ts (a user trial).
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }

/** The bare modules the files under `dir` import (types or values), as `name` or `@scope/name`. */
function imported(dir: string, into = new Set<string>()): Set<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) imported(p, into)
    else if (e.name.endsWith('.ts')) {
      for (const m of readFileSync(p, 'utf8').matchAll(/^import [^'"]*from '([^'./][^']*)'/gm)) {
        const spec = m[1]!
        if (spec.startsWith('node:')) continue
        into.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!)
      }
    }
  }
  return into
}

/** Does package `name` ship its own types? */
function ownTypes(name: string): boolean {
  const dir = join(ROOT, 'node_modules', name)
  const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { types?: string; typings?: string; exports?: unknown }
  return p.types !== undefined || p.typings !== undefined || existsSync(join(dir, 'index.d.ts')) || JSON.stringify(p.exports ?? {}).includes('"types"')
}

describe('the types of the dependencies', () => {
  it('are dependencies too, for every dependency that ships none of its own', () => {
    const missing: string[] = []
    for (const name of imported(join(ROOT, 'src'))) {
      if (!(name in pkg.dependencies) || ownTypes(name)) continue
      const types = `@types/${name.replace(/^@([^/]+)\//, '$1__')}`
      if (!(types in pkg.dependencies)) missing.push(`${name} needs ${types}`)
    }
    expect(missing).toEqual([])
  })
})
