/**
 * `weave.spawn(type, params)` with the thread type itself, not its name (a user trial: a
 * misspelt name, or params of the wrong shape, compiled and failed at run time). The weave
 * names it by the object it loaded, or by the module that declared it (a program importing
 * `threads/…` holds another instance than the weave's), `params` are checked by tsc against
 * the type, and `join` of the id gives the type's result type.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { thread, ThreadTypeUnavailable, UnknownThreadType, Weave, type AnyThreadType, type ThreadId } from 'raiment'
import { projectWith, writeThread } from './support/threads-dir.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const double = thread({ uses: ['clock'], async does(p: { n: number }) { await this.clock.now(); return p.n * 2 } })
const noParams = thread({ uses: [], async does() { return 'none' } })
const stranger = thread({ uses: [], async does(p: { n: number }) { return p.n } })

function threadRows(db: string): number {
  const d = new Database(db, { readonly: true })
  try {
    return (d.prepare('SELECT count(*) AS n FROM threads').get() as { n: number }).n
  } finally {
    d.close()
  }
}

describe('spawn a thread type given as itself', () => {
  it('one given by name to the weave: the id joins with its result typed; a type not the weave\'s is refused with its module, nothing recorded', async () => {
    const db = join(tempDir(), 'raiment.db')
    const weave = await Weave.open({ db, threads: { pay: double, noParams }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
    try {
      const id: ThreadId<number> = weave.spawn(double, { n: 21 })
      const end = await weave.join(id)
      expect(end).toMatchObject({ status: 'done', type: 'pay', result: 42 })
      // The result's type comes with the id: a number, not unknown.
      if (end.status === 'done') expect(end.result.toFixed(0)).toBe('42')
      expect(await weave.join(weave.spawn(noParams))).toMatchObject({ status: 'done', type: 'noParams', result: 'none' })
      const before = threadRows(db)
      let err: unknown
      try {
        weave.spawn(stranger, { n: 1 })
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(UnknownThreadType)
      expect((err as UnknownThreadType).code).toBe('RAIMENT_UNKNOWN_THREAD_TYPE')
      expect((err as Error).message).toContain('spawn-typed.test.ts')
      expect((err as Error).message).toContain('known types: pay, noParams')
      await weave.committed()
      expect(threadRows(db)).toBe(before)
    } finally {
      await weave.close()
    }
  })

  it('a module of the threads directory that the program imports itself: named by its path there; one that failed to load says why', async () => {
    const dir = projectWith({
      'orders/checkout.ts': `import { thread } from '${RAIMENT}'
export default thread({ uses: ['clock'], async does(p: { n: number }) { await this.clock.now(); return p.n + 1 } })
export const refund = thread({ uses: ['clock'], async does(p: { n: number }) { await this.clock.now(); return -p.n } })
`,
      'broken.ts': `import { thread } from '${RAIMENT}'
export const declared = thread({ uses: [], async does() { return 1 } })
throw new Error('boom at import')
`,
    })
    const db = join(dir, 'raiment.db')
    const weave = await Weave.open({ db, threads: join(dir, 'threads'), ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
    try {
      // The program's own import (the weave's instance here, where vitest loads both; in a program
      // whose raiment is installed, another).
      const mod = (await import(pathToFileURL(join(dir, 'threads/orders/checkout.ts')).href)) as { default: AnyThreadType; refund: AnyThreadType }
      const checkout = mod.default
      expect(await weave.join(weave.spawn(checkout, { n: 1 }))).toMatchObject({ status: 'done', type: 'orders/checkout', result: 2 })
      // Another type its module declares is not the module's type: refused, never run as checkout (a review).
      expect(() => weave.spawn(mod.refund, { n: 1 })).toThrow(UnknownThreadType)
      // Reloaded, the weave holds another instance of the module: the program's, the one it replaced, is still known.
      writeThread(dir, 'orders/checkout.ts', `import { thread } from '${RAIMENT}'
export default thread({ uses: ['clock'], async does(p: { n: number }) { await this.clock.now(); return p.n + 100 } })
`)
      await weave.reload()
      expect(await weave.join(weave.spawn(checkout, { n: 1 }))).toMatchObject({ status: 'done', type: 'orders/checkout', result: 101 })
      // A type declared by the module that failed to load here (as the program could hold it): refused with why.
      const declared = { ...checkout, [Symbol.for('raiment.thread-source')]: join(dir, 'threads/broken.ts') } as AnyThreadType
      expect(() => weave.spawn(declared, {})).toThrow(ThreadTypeUnavailable)
    } finally {
      await weave.close()
    }
  })
})

/** Checked by tsc (`npm run typecheck`), never run: what the types refuse. */
export function typesRefuse(weave: Weave): void {
  // @ts-expect-error params of another shape than the type's
  weave.spawn(double, { m: 1 })
  // @ts-expect-error params missing where the type takes some
  weave.spawn(double)
  // @ts-expect-error a property the type's params do not have
  weave.spawn(double, { n: 1, extra: true })
  const id = weave.spawn(double, { n: 1 })
  void weave.join(id).then((end) => {
    // @ts-expect-error the result is a number
    if (end.status === 'done') end.result.toUpperCase()
  })
  // A name still takes anything, and joins to unknown.
  void weave.join(weave.spawn('double', { anything: true })).then((end) => end.status === 'done' && (end.result as number))
}
