/**
 * Which failed threads leave a dump (src/dump.ts `leavesDump`): a thread ended by the end of a
 * thread linked to it (`LinkedExit`) leaves none; the thread whose failure set it off leaves its
 * own. A supervisor killed with its children leaves no dump at all. In-process weaves on real
 * journal files; the dumps directory is read after the weave closed (its writes settled).
 */
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { thread, Weave } from 'raiment'
import { endLine } from '../src/cli/weave-commands.js'
import { tempDir } from './support/tmp.js'

/** Waits for a message; fails when told to. */
const worker = thread({
  uses: ['mailbox'],
  async does() {
    const m = await this.mailbox.receive<string>()
    if (m === 'fail') throw new Error('worker failed')
    return m
  },
})

/** Spawns `n` linked workers, tells them their ids, and waits. */
const parent = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.threads.spawn('worker', undefined, { link: true })
    return this.mailbox.receive<string>({ match: 'never' })
  },
})

/** Spawns a parent of linked workers and joins it: the join throws the parent's LinkedExit, which this thread throws on. */
const joiner = thread({
  uses: ['threads'],
  async does() {
    return this.threads.join(await this.threads.spawn('parent', { n: 1 }))
  },
})

function open(dir: string): Promise<Weave> {
  return Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { worker, parent, joiner }, dumps: join(dir, 'dumps'), ioLibs: false })
}

function dumpsIn(dir: string): string[] {
  const d = join(dir, 'dumps')
  return existsSync(d) ? readdirSync(d, { recursive: true }).map(String).filter((f) => f.endsWith('.json')) : []
}

/** The live children of `parentId`, once `n` of them are running. */
async function children(weave: Weave, parentId: string, n: number): Promise<string[]> {
  for (;;) {
    await weave.committed()
    const ids = weave.journal.db.prepare("SELECT id FROM threads WHERE parent = ? AND status = 'running'").pluck().all(parentId) as string[]
    if (ids.length >= n) return ids
    await new Promise((r) => setImmediate(r))
  }
}

test('a supervisor killed ends its children with LinkedExit, and none of them leaves a dump', async () => {
  const dir = tempDir()
  const weave = await open(dir)
  const sup = weave.spawn('raiment/supervisor', { children: [1, 2, 3].map(() => ({ type: 'worker' })) })
  const kids = await children(weave, sup, 3)
  weave.kill(sup)
  const ends = await Promise.all(kids.map((id) => weave.join(id)))
  expect(ends.map((e) => e.status)).toEqual(['failed', 'failed', 'failed'])
  expect(ends.map((e) => (e.status === 'failed' ? (e.error as { code?: string }).code : null))).toEqual(Array(3).fill('RAIMENT_LINKED_EXIT'))
  await weave.close()
  expect(dumpsIn(dir)).toEqual([])
})

test('a worker that fails leaves its dump; the parent and the siblings it took down with it leave none', async () => {
  const dir = tempDir()
  const weave = await open(dir)
  const top = weave.spawn('parent', { n: 3 })
  const kids = await children(weave, top, 3)
  const failing = kids[1]!
  weave.send(failing, 'fail')
  const ends = await Promise.all([top, ...kids].map((id) => weave.join(id)))
  expect(ends.every((e) => e.status === 'failed')).toBe(true)
  // The line `raiment start` prints of each end names a dump only where one is written.
  expect(ends.filter((e) => endLine(weave, e).includes('(dump: ')).map((e) => e.id)).toEqual([failing])
  await weave.close()
  expect(dumpsIn(dir)).toHaveLength(1)
  expect(existsSync(weave.dumpPath(failing)!)).toBe(true)
})

test("a thread that throws on a LinkedExit its join threw failed by itself: it leaves its dump, and its end's line names it", async () => {
  const dir = tempDir()
  const weave = await open(dir)
  const top = weave.spawn('joiner')
  const parentId = await (async () => {
    for (;;) {
      await weave.committed()
      const p = weave.journal.db.prepare("SELECT id FROM threads WHERE type = 'parent'").pluck().get() as string | undefined
      if (p !== undefined) return p
      await new Promise((r) => setImmediate(r))
    }
  })()
  const [kid] = await children(weave, parentId, 1)
  weave.send(kid!, 'fail')
  const end = await weave.join(top)
  expect(end).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
  await weave.close()
  expect(existsSync(weave.dumpPath(top)!)).toBe(true)
  expect(endLine(weave, end)).toContain('(dump: ')
  expect(dumpsIn(dir)).toHaveLength(2)
})
