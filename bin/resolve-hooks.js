// Module resolve hooks of the `raiment` command, registered by bin/raiment.js:
// - `raiment` and `raiment/…`, whoever imports them, are the command's own package, so a thread
//   file loads where no node_modules holds Raiment (a dump and its thread file copied anywhere),
//   and the process holds one copy of Raiment;
// - in a checkout of the repository, the `raiment-source` condition: `raiment` is its sources;
// - a .ts or .js file with no package.json above it is an ES module (Node and tsx would load it
//   as CommonJS, where `import` fails).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The URL of bin/raiment.js: resolving from there, `raiment` is the package itself. */
let self = ''
let source = false

/** @param {{ self: string, source: boolean }} data */
export function initialize(data) {
  self = data.self
  source = data.source
}

/** @type {Map<string, boolean>} */
const packaged = new Map()

/** Is there a package.json at or above `dir`? */
function inPackage(dir) {
  let known = packaged.get(dir)
  if (known === undefined) {
    const parent = dirname(dir)
    known = existsSync(join(dir, 'package.json')) || (parent !== dir && inPackage(parent))
    packaged.set(dir, known)
  }
  return known
}

export async function resolve(specifier, context, next) {
  let c = context
  if (source && !c.conditions.includes('raiment-source')) c = { ...c, conditions: [...c.conditions, 'raiment-source'] }
  if (specifier === 'raiment' || specifier.startsWith('raiment/')) c = { ...c, parentURL: self }
  const r = await next(specifier, c)
  if (r.format !== 'module' && r.url.startsWith('file:') && /\.(ts|js)$/.test(r.url) && !inPackage(dirname(fileURLToPath(r.url)))) {
    return { ...r, format: 'module' }
  }
  return r
}
