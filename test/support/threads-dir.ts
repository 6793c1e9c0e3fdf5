/**
 * A project directory in a temp dir with a `threads/` of the given files: one good thread type
 * and modules that each fail to load in their own way. The files import raiment by the URL of
 * this checkout's sources, so they load from a temp dir in vitest and in a CLI child alike.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { tempDir } from './tmp.js'

const RAIMENT = new URL('../../src/index.ts', import.meta.url).href

/** `good` doubles `n` after one journaled call; the others cannot be thread types. */
export const GOOD_AND_BROKEN: Record<string, string> = {
  'good.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock'],
  async does(p: { n: number }) {
    await this.clock.now()
    return p.n * 2
  },
})
`,
  'syntax.ts': `import { thread } from '${RAIMENT}'
export default thread({ uses: [], async does( { return 1 } })
`,
  'throws.ts': `throw new Error('boom at import')
`,
  'not-a-thread.ts': `export default { uses: [], async does() { return 1 } }
`,
  'nested/missing-lib.ts': `import { thread } from '${RAIMENT}'
export default thread({ uses: ['nosuchlib' as 'clock'], async does() { return 1 } })
`,
}

/** The types of GOOD_AND_BROKEN that cannot run, and what their report says. */
export const BROKEN: Record<string, RegExp> = {
  syntax: /threads\/syntax\.ts: could not be loaded: .*[Ee]xpected/,
  throws: /threads\/throws\.ts: could not be loaded: Error: boom at import/,
  'not-a-thread': /threads\/not-a-thread\.ts: its default export is not a thread type/,
  'nested/missing-lib': /thread type 'nested\/missing-lib' \(.*threads\/nested\/missing-lib\.ts\) uses unknown I\/O library 'nosuchlib'/,
}

/** A fresh project directory (an ESM package) whose `threads/` holds `files`; returns its path. */
export function projectWith(files: Record<string, string>): string {
  const dir = tempDir('raiment-types-')
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  for (const [name, text] of Object.entries(files)) writeThread(dir, name, text)
  return dir
}

/** Writes `threads/<name>` of project `dir`. */
export function writeThread(dir: string, name: string, text: string): void {
  const file = join(dir, 'threads', name)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
}
