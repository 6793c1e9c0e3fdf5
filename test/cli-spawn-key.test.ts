/**
 * `raiment spawn TYPE PARAMS --key KEY`: once per key from the command line, as
 * `Weave.spawn(type, params, { id: key })` is from a program (a user trial found no way to): the
 * thread is `<weave>/<key>`, a spawn of the key again with the same type and params prints that
 * thread and records nothing, with other params it is refused, with no weave running, beside a
 * running weave, and with --wait.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, vi } from 'vitest'
import { Weave } from 'raiment'
import { cliRun } from './support/cli-in-process.js'
import { GOOD_AND_BROKEN, projectWith } from './support/threads-dir.js'

const good = { 'good.ts': GOOD_AND_BROKEN['good.ts']! }

function rows(db: string): Array<{ id: string; params: string }> {
  const d = new Database(db, { readonly: true })
  try {
    return d.prepare('SELECT id, params FROM threads ORDER BY id').all() as Array<{ id: string; params: string }>
  } finally {
    d.close()
  }
}

describe('raiment spawn --key', () => {
  it('with no weave running: the key is the thread; again, the same thread; other params or a key of digits are refused; --wait runs one', async () => {
    const dir = projectWith(good)
    const db = join(dir, 'r.db')
    const spawn = (...args: string[]) => cliRun(['spawn', 'good', ...args, '--db', db, '--threads', join(dir, 'threads'), '--io-libs', join(dir, 'io-libs')])
    const first = await spawn('{"n":1}', '--key', 'order-7')
    expect(first.code, first.printed.join('')).toBe(0)
    const id = first.printed[0]!.trim()
    expect(id).toMatch(/\/order-7$/)
    const again = await spawn('{"n":1}', '--key', 'order-7')
    expect(again.code).toBe(0)
    expect(again.printed[0]!.trim()).toBe(id)
    expect(rows(db).map((r) => r.id)).toEqual([id])

    const other = await spawn('{"n":2}', '--key', 'order-7')
    expect(other.code).toBe(1)
    expect(other.printed.join('')).toMatch(/^raiment: RAIMENT_SPAWN_ID_TAKEN: /m)
    const digits = await spawn('{"n":2}', '--key', '5')
    expect(digits.code).toBe(1)
    expect(digits.printed.join('')).toMatch(/^raiment: RAIMENT_INVALID_ARGUMENT: spawn: id '.*\/5' has the shape of the ids this weave hands out itself/m)
    expect(rows(db).map((r) => r.id)).toEqual([id])

    const waited = await spawn('{"n":21}', '--key', 'order-8', '--wait')
    expect(waited.code, waited.printed.join('')).toBe(0)
    expect(waited.printed).toContain('42\n')
    expect(rows(db).map((r) => r.id)).toEqual([id, id.replace(/order-7$/, 'order-8')])
  })

  it('beside a running weave: the weave spawns it once per key, and refuses a key of digits', async () => {
    const dir = projectWith(good)
    const db = join(dir, 'r.db')
    const weave = await Weave.open({ db, threads: join(dir, 'threads'), ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
    try {
      const spawn = (...args: string[]) => cliRun(['spawn', 'good', ...args, '--db', db, '--threads', join(dir, 'threads'), '--io-libs', join(dir, 'io-libs')])
      const first = await spawn('{"n":3}', '--key', 'k')
      expect(first.code, first.printed.join('')).toBe(0)
      const id = first.printed[0]!.trim()
      expect(id).toBe(`${weave.journal.weaveId}/k`)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 6 })
      const again = await spawn('{"n":3}', '--key', 'k')
      expect(again.printed[0]!.trim()).toBe(id)
      const digits = await spawn('{"n":3}', '--key', '12')
      expect(digits.code).toBe(1)
      expect(digits.printed.join('')).toMatch(/^raiment: RAIMENT_INVALID_ARGUMENT: spawn: id '.*\/12' has the shape/m)
      await weave.committed()
      expect(rows(db).map((r) => r.id)).toEqual([id])
    } finally {
      await weave.close()
    }
  })

  it('--json without --wait counts the calls of the thread it prints as ps --json does (it printed 0 for a thread that had run)', async () => {
    const RAIMENT = new URL('../src/index.ts', import.meta.url).href
    const waits = `import { thread } from '${RAIMENT}'
export default thread({ uses: ['clock', 'mailbox'], async does() { await this.clock.now(); await this.clock.now(); return await this.mailbox.receive() } })
`
    const dir = projectWith({ ...good, 'waits.ts': waits })
    const db = join(dir, 'r.db')
    const weave = await Weave.open({ db, threads: join(dir, 'threads'), ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
    try {
      const where = (cmd: string) => (cmd === 'spawn' ? ['--db', db, '--threads', join(dir, 'threads'), '--io-libs', join(dir, 'io-libs')] : ['--db', db])
      const json = async (...args: string[]) => {
        const r = await cliRun([...args, ...where(args[0]!), '--json'])
        expect(r.code, r.printed.join('')).toBe(0)
        return JSON.parse(r.printed.join('')) as { id: string; status: string; calls: number } | Array<{ id: string; status: string; calls: number }>
      }
      const ps = async (id: string) => ((await json('ps')) as Array<{ id: string; calls: number }>).find((t) => t.id === id)!
      // A key spawned already prints its thread: here one that has ended.
      const done = (await json('spawn', 'good', '{"n":3}', '--key', 'd')) as { id: string }
      await weave.join(done.id)
      await weave.committed()
      expect(await json('spawn', 'good', '{"n":3}', '--key', 'd')).toMatchObject({ id: done.id, status: 'done', result: 6, calls: 1 })
      expect((await ps(done.id)).calls).toBe(1)
      // One that runs, waiting after its two calls.
      const running = (await json('spawn', 'waits', '{}', '--key', 'w')) as { id: string }
      await vi.waitFor(async () => expect((await ps(running.id)).calls).toBe(2))
      expect(await json('spawn', 'waits', '{}', '--key', 'w')).toMatchObject({ id: running.id, status: 'running', calls: 2 })
    } finally {
      await weave.close()
    }
  })
})
