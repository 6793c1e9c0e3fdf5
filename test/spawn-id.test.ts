/**
 * `weave.spawn(type, params, { id })`: a thread spawned once per id of the caller's (a user trial
 * spawning once per HTTP request key). An id shaped as the weave's own (`<weaveId>/<n>`) was
 * taken, and a later automatic spawn got the same id: its record failed the whole batch
 * (JournalWriteFailed, uncaught), spawns whose ids were already returned with it. A second spawn
 * of an id with other params returned the first thread as if it were the one asked for. An empty
 * key (`--key ''`, `{ id: '' }`) made thread `<weaveId>/`; a key had no length limit.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InvalidArgument, SpawnIdTaken, thread, Weave } from 'raiment'
import { cliRun } from './support/cli-in-process.js'
import { tempDir } from './support/tmp.js'

const echo = thread({ uses: ['clock'], async does(p: unknown) { return p } })
const other = thread({ uses: ['clock'], async does() { return 'other' } })

async function open(db = join(tempDir(), 'raiment.db')): Promise<Weave> {
  return Weave.open({ db, threads: { echo, other }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
}

describe('spawn with an id of your own', () => {
  it('refuses an id shaped as the weave\'s own ids, before anything is recorded, and the batch commits', async () => {
    const weave = await open()
    try {
      const first = weave.spawn('echo', { first: true })
      const guess = first.replace(/\d+$/, (n) => String(Number(n) + 1))
      let err: unknown
      try {
        weave.spawn('echo', { mine: true }, { id: guess })
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(InvalidArgument)
      expect((err as InvalidArgument).code).toBe('RAIMENT_INVALID_ARGUMENT')
      expect((err as Error).message).toMatch(/shape of the ids this weave hands out/)
      const next = weave.spawn('echo', { next: true })
      await weave.committed()
      expect(await weave.join(first)).toMatchObject({ status: 'done', result: { first: true } })
      expect(await weave.join(next)).toMatchObject({ status: 'done', result: { next: true } })
      expect(weave.journal.thread(guess)?.params ?? null).not.toMatch(/mine/)
    } finally {
      await weave.close()
    }
  })

  it("refuses an id whose part before its '/' is not this weave's id, before anything is recorded; takes one that is", async () => {
    const weave = await open()
    try {
      const self = weave.journal.weaveId
      for (const id of ['other-weave/x1', 'order-a/b', '/x']) {
        expect(() => weave.spawn('echo', { id }, { id }), id).toThrow(InvalidArgument)
        expect(() => weave.spawn('echo', { id }, { id }), id).toThrow(new RegExp(`names weave '${id.slice(0, id.indexOf('/'))}' .*not this one \\('${self}'\\).*pass a key without '/'`))
      }
      const mine = weave.spawn('echo', { mine: true }, { id: `${self}/order-7` })
      expect(mine).toBe(`${self}/order-7`)
      await weave.committed()
      expect(weave.journal.threads({}).map((t) => t.id)).toEqual([mine])
    } finally {
      await weave.close()
    }
  })

  it('takes an id of that shape the CLI reserved for this weave to spawn', async () => {
    const weave = await open()
    try {
      // As src/weave-control.ts spawns for `raiment spawn`: the id reserved in the journal first.
      const id = weave.journal.nextThreadId(1)
      weave.journal.reservedThreadId(id)
      expect(weave.spawn('echo', { cli: true }, { id })).toBe(id)
      const next = weave.spawn('echo', { next: true })
      expect(next).not.toBe(id)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: { cli: true } })
      expect(await weave.join(next)).toMatchObject({ status: 'done', result: { next: true } })
    } finally {
      await weave.close()
    }
  })

  it('returns the same thread for the same type and params, queued or committed, and across a restart', async () => {
    const db = join(tempDir(), 'raiment.db')
    let weave = await open(db)
    try {
      expect(weave.spawn('echo', { req: 1, at: 'x' }, { id: 'req-1' })).toBe(`${weave.journal.weaveId}/req-1`)
      expect(weave.spawn('echo', { req: 1, at: 'x' }, { id: 'req-1' })).toBe(`${weave.journal.weaveId}/req-1`)
      await weave.committed()
      // The same values, keys in another order.
      expect(weave.spawn('echo', { at: 'x', req: 1 }, { id: 'req-1' })).toBe(`${weave.journal.weaveId}/req-1`)
      expect(await weave.join(`${weave.journal.weaveId}/req-1`)).toMatchObject({ status: 'done', result: { req: 1, at: 'x' } })
    } finally {
      await weave.close()
    }
    weave = await open(db)
    try {
      expect(weave.spawn('echo', { req: 1, at: 'x' }, { id: 'req-1' })).toBe(`${weave.journal.weaveId}/req-1`)
    } finally {
      await weave.close()
    }
  })

  it('refuses the id of a thread spawned with other params or another type, queued or committed', async () => {
    const weave = await open()
    try {
      weave.spawn('echo', { req: 1 }, { id: 'req-1' })
      expect(() => weave.spawn('echo', { req: 'DIFFERENT' }, { id: 'req-1' })).toThrow(SpawnIdTaken)
      expect(() => weave.spawn('other', { req: 1 }, { id: 'req-1' })).toThrow(/taken by a thread of type 'echo'/)
      await weave.committed()
      let err: unknown
      try {
        weave.spawn('echo', { req: 'DIFFERENT' }, { id: 'req-1' })
      } catch (e) {
        err = e
      }
      expect((err as SpawnIdTaken).code).toBe('RAIMENT_SPAWN_ID_TAKEN')
      expect((err as Error).message).toMatch(/\/req-1' is taken by a thread of type 'echo' spawned with other params/)
      expect(await weave.join(`${weave.journal.weaveId}/req-1`)).toMatchObject({ status: 'done', result: { req: 1 } })
    } finally {
      await weave.close()
    }
  })
})

describe('a key of your own', () => {
  const actor = thread({
    uses: ['threads', 'mailbox'],
    async does(p: { runs: number }) {
      if (p.runs === 0) return this.threads.continueAsNew({ runs: 1 })
      return this.mailbox.receive()
    },
  })
  const openActor = (): Promise<Weave> => Weave.open({ db: join(tempDir(), 'raiment.db'), threads: { actor }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })

  it('names a thread of this weave (<weaveId>/<key>): a message by that id reaches it', async () => {
    const weave = await openActor()
    try {
      const id = weave.spawn('actor', { runs: 1 }, { id: 'order-42' })
      expect(id).toBe(`${weave.journal.weaveId}/order-42`)
      expect(weave.send(id, 'hi')).toEqual({ delivered: true, to: id })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'hi' })
    } finally {
      await weave.close()
    }
  })

  it('is spawned once also after its thread continued as new (its params then are those it continued with)', async () => {
    const weave = await openActor()
    try {
      const id = weave.spawn('actor', { runs: 0 }, { id: 'order-7' })
      await expect.poll(() => (weave.journal.thread(id) as { continued?: number } | undefined)?.continued, { timeout: 5_000, interval: 10 }).toBe(1)
      expect(weave.spawn('actor', { runs: 0 }, { id: 'order-7' })).toBe(id)
      expect(() => weave.spawn('actor', { runs: 5 }, { id: 'order-7' })).not.toThrow()
    } finally {
      await weave.close()
    }
  })

  it("is refused empty (or empty after its '/') or longer than 200 characters, before anything is recorded; 200 is taken", async () => {
    const weave = await open()
    try {
      const w = weave.journal.weaveId
      for (const [id, said] of [['', /the id \(key\) is empty.*pass a key that names one/], [`${w}/`, /has nothing after its '\/'/], ['k'.repeat(201), /up to 200 characters, got 201/]] as const) {
        let err: unknown
        try {
          weave.spawn('echo', 1, { id })
        } catch (e) {
          err = e
        }
        expect(err).toBeInstanceOf(InvalidArgument)
        expect((err as InvalidArgument).code).toBe('RAIMENT_INVALID_ARGUMENT')
        expect((err as Error).message).toMatch(said)
      }
      const long = weave.spawn('echo', 2, { id: 'k'.repeat(200) })
      expect(await weave.join(long)).toMatchObject({ status: 'done', result: 2 })
      expect(weave.journal.threads().map((t) => t.id)).toEqual([long])
    } finally {
      await weave.close()
    }
  })

  it("is refused empty by raiment spawn --key '', with no journal made", async () => {
    const db = join(tempDir(), 'r.db')
    const r = await cliRun(['spawn', 'echo', '{}', '--key', '', '--db', db])
    expect(r.code).toBe(1)
    expect(r.printed.join('')).toMatch(/RAIMENT_INVALID_ARGUMENT: spawn: the id \(key\) is empty/)
    expect(existsSync(db)).toBe(false)
  })
})
