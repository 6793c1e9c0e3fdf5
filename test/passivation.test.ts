/**
 * Passivation (src/passivation/): a thread that waits leaves memory and wakes by replay of its
 * record when a message, its due time, the joined thread's end, a kill or a linked exit comes,
 * and goes on as if it had stayed. Real SQLite, real weave.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, TIMED_OUT, Weave, type WeaveOptions } from 'raiment'
import { parsePassivateAfter } from '../src/passivation/options.js'
import { passivatedOnce } from './support/passivated.js'
import { tempDir } from './support/tmp.js'

const echo = thread({
  uses: ['mailbox', 'clock'],
  async does() {
    const got: unknown[] = []
    for (;;) {
      const m = await this.mailbox.receive<{ n: number; from?: string }>()
      if (m.n < 0) return got
      got.push(m.n)
      if (m.from !== undefined) await this.mailbox.send(m.from, { n: m.n * 10 })
    }
  },
})

/** Waits for one message with no time limit, said as `timeout: Infinity`. */
const forever = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive({ timeout: Infinity })
  },
})

const picky = thread({
  uses: ['mailbox'],
  async does() {
    const a = await this.mailbox.receive<{ k: string }>({ match: (m) => m.k === 'b' })
    const b = await this.mailbox.receive<{ k: string }>({ match: { k: 'a' } })
    const c = await this.mailbox.receive<{ k: string }>({ timeout: 60 })
    return [a, b, c === TIMED_OUT ? 'timed out' : c]
  },
})

const sleeper = thread({
  uses: ['clock'],
  async does(p: { ms: number }) {
    const t0 = await this.clock.now()
    await this.clock.sleep(p.ms)
    return (await this.clock.now()) - t0
  },
})

const parent = thread({
  uses: ['threads'],
  async does(p: { ms: number }) {
    const child = await this.threads.spawn('sleeper', { ms: p.ms })
    return { child: await this.threads.join(child) }
  },
})

const linker = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { to: string }) {
    await this.threads.link(p.to)
    await this.mailbox.receive()
    return 'not reached'
  },
})

function open(dir: string, o: Partial<WeaveOptions> = {}): Promise<Weave> {
  return Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { echo, picky, sleeper, parent, linker, forever }, ioLibs: false, dumps: false, passivateAfter: 0, ...o })
}

/** Resolves once thread `id` has been passivated (after `from` such events of it). */
const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** A thread file: waits for a message, then returns it with its version; `arg` is in its record. */
const waiterFile = (version: number, arg: number): string => `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['log', 'mailbox'],
  async does() {
    await this.log.info('waiting', { arg: ${arg} })
    return { version: ${version}, m: await this.mailbox.receive() }
  },
})
`

const rowOf = (weave: Weave, id: string): unknown => weave.journal.db.prepare('SELECT due, mailbox, joins FROM passivated WHERE thread = ?').get(id)

describe('passivation', () => {
  it('a thread waiting in receive leaves memory and wakes on a message, as many times as needed', async () => {
    const weave = await open(tempDir('raiment-passivate-'))
    try {
      const id = weave.spawn('echo')
      for (let n = 0; n < 5; n++) {
        await passivatedOnce(weave, [id])
        expect(weave.running).toBe(0)
        await weave.committed()
        expect(rowOf(weave, id)).toEqual({ due: null, mailbox: 1, joins: null })
        weave.send(id, { n })
      }
      await passivatedOnce(weave, [id])
      weave.send(id, { n: -1 })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: [0, 1, 2, 3, 4] })
      await weave.committed()
      expect(weave.journal.db.prepare('SELECT count(*) AS n FROM passivated').get()).toEqual({ n: 0 })
      expect(weave.journal.db.prepare('SELECT count(*) AS n FROM inbox').get()).toEqual({ n: 0 })
    } finally {
      await weave.close()
    }
  })

  it('a receive with timeout: Infinity leaves memory as one without a timeout, with nothing due', async () => {
    const weave = await open(tempDir('raiment-passivate-'))
    try {
      const id = weave.spawn('forever')
      await passivatedOnce(weave, [id])
      await weave.committed()
      expect(rowOf(weave, id)).toEqual({ due: null, mailbox: 1, joins: null })
      weave.send(id, 'hi')
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'hi' })
    } finally {
      await weave.close()
    }
  })

  it('selective receives see the messages that came while passivated, in order, and a timeout still fires', async () => {
    const weave = await open(tempDir('raiment-passivate-'))
    try {
      const id = weave.spawn('picky')
      await passivatedOnce(weave, [id])
      weave.send(id, { k: 'a' })
      await passivatedOnce(weave, [id]) // woken by 'a', which does not match: waits again
      weave.send(id, { k: 'c' })
      weave.send(id, { k: 'b' })
      const end = await weave.join(id)
      expect(end).toMatchObject({ status: 'done', result: [{ k: 'b' }, { k: 'a' }, { k: 'c' }] })
    } finally {
      await weave.close()
    }
  })

  it('a sleeping thread wakes when its time is due, not before, and once', async () => {
    const weave = await open(tempDir('raiment-passivate-'))
    try {
      const starts: string[] = []
      weave.on('thread-start', (s) => starts.push(s.id))
      const id = weave.spawn('sleeper', { ms: 150 })
      await passivatedOnce(weave, [id])
      await weave.committed()
      const row = rowOf(weave, id) as { due: number; mailbox: number }
      expect(row.mailbox).toBe(0)
      const end = await weave.join(id)
      expect(end.status).toBe('done')
      expect((end as { result: number }).result).toBeGreaterThanOrEqual(150)
      expect(starts).toEqual([id, id])
    } finally {
      await weave.close()
    }
  })

  it('a parent joining a passivated child wakes when the child ends; weave.join of a passivated thread waits for its end', async () => {
    const weave = await open(tempDir('raiment-passivate-'))
    try {
      const id = weave.spawn('parent', { ms: 100 })
      await passivatedOnce(weave, [id])
      await weave.committed()
      const child = weave.journal.threads({ type: 'sleeper' })[0]!.id
      expect(rowOf(weave, id)).toEqual({ due: null, mailbox: 0, joins: child })
      const childEnd = weave.join(child)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: { child: expect.any(Number) } })
      expect((await childEnd).status).toBe('done')
    } finally {
      await weave.close()
    }
  })

  it('a kill wakes a passivated thread to end it (its parent and links are told); a linked exit reaches a passivated thread', async () => {
    const weave = await open(tempDir('raiment-passivate-'))
    try {
      const target = weave.spawn('echo')
      const other = weave.spawn('linker', { to: target })
      await Promise.all([passivatedOnce(weave, [target]), passivatedOnce(weave, [other])])
      expect(weave.running).toBe(0)
      expect(weave.kill(target)).toBe(true)
      expect(await weave.join(target)).toMatchObject({ status: 'killed' })
      const end = await weave.join(other)
      expect(end).toMatchObject({ status: 'failed' })
      expect((end as { error: Error }).error.message).toMatch(/linked/i)
    } finally {
      await weave.close()
    }
  })

  it('with passivateAfter 200, a thread is passivated 200 ms after its latest wait began, not earlier', async () => {
    const weave = await open(tempDir('raiment-passivate-'), { passivateAfter: 200 })
    try {
      const id = weave.spawn('echo')
      let last = Date.now()
      for (let n = 0; n < 4; n++) {
        await new Promise((r) => setTimeout(r, 60))
        last = Date.now()
        weave.send(id, { n })
      }
      await passivatedOnce(weave, [id])
      expect(Date.now() - last).toBeGreaterThanOrEqual(200)
      weave.send(id, { n: -1 })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: [0, 1, 2, 3] })
    } finally {
      await weave.close()
    }
  })

  it('passivateAfter: false keeps waiting threads in memory; a bad value is refused', async () => {
    const weave = await open(tempDir('raiment-passivate-'), { passivateAfter: false })
    try {
      const id = weave.spawn('echo')
      await new Promise((r) => setTimeout(r, 30))
      expect(weave.running).toBe(1)
      weave.send(id, { n: -1 })
      expect((await weave.join(id)).status).toBe('done')
    } finally {
      await weave.close()
    }
    await expect(open(tempDir('raiment-passivate-'), { passivateAfter: -1 })).rejects.toThrow(/passivateAfter must be/)
  })

  it('a reload wakes passivated threads of a changed type on their old code: the compatible move to the new code, the others keep theirs', async () => {
    const dir = tempDir('raiment-passivate-reload-')
    mkdirSync(join(dir, 'threads'))
    const put = (name: string, text: string): void => writeFileSync(join(dir, 'threads', name), text)
    put('moves.ts', waiterFile(1, 1))
    put('stays.ts', waiterFile(1, 1))
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: join(dir, 'threads'), dumps: false, passivateAfter: 0, onWarning: () => {} })
    try {
      const moves = weave.spawn('moves')
      const stays = weave.spawn('stays')
      await Promise.all([passivatedOnce(weave, [moves]), passivatedOnce(weave, [stays])])
      put('moves.ts', waiterFile(2, 1))
      put('stays.ts', waiterFile(2, 99))
      const again = passivatedOnce(weave, [moves])
      const report = await weave.reload()
      const of = (t: string) => report.types.find((x) => x.type === t)!
      expect(of('moves').moved).toEqual([moves])
      expect(of('stays').kept.map((k) => k.id)).toEqual([stays])
      // The one moved is passivated again; the one kept stays in memory on its old code.
      await again
      expect(weave.running).toBe(1)
      weave.send(moves, 'a')
      weave.send(stays, 'b')
      expect(await weave.join(moves)).toMatchObject({ status: 'done', result: { version: 2, m: 'a' } })
      expect(await weave.join(stays)).toMatchObject({ status: 'done', result: { version: 1, m: 'b' } })
    } finally {
      await weave.close()
    }
  })

  it('raiment start --passivate-after takes a duration or never', () => {
    expect(parsePassivateAfter('0')).toBe(0)
    expect(parsePassivateAfter('500ms')).toBe(500)
    expect(parsePassivateAfter('30s')).toBe(30_000)
    expect(parsePassivateAfter('1.5m')).toBe(90_000)
    expect(parsePassivateAfter('1h')).toBe(3_600_000)
    expect(parsePassivateAfter('never')).toBe(false)
    expect(() => parsePassivateAfter('soon')).toThrow(/--passivate-after must be a duration such as 0, 500ms, 30s, 5m or 1h, or 'never', got 'soon'/)
  })

  it('passivated threads stay passivated across a restart, and wake when a message comes', async () => {
    const dir = tempDir('raiment-passivate-')
    const first = await open(dir)
    const id = first.spawn('echo')
    await passivatedOnce(first, [id])
    await first.close()
    const second = await open(dir)
    try {
      expect(second.running).toBe(0)
      expect(second.resumed).toBe(0)
      second.send(id, { n: 7 })
      second.send(id, { n: -1 })
      expect(await second.join(id)).toMatchObject({ status: 'done', result: [7] })
    } finally {
      await second.close()
    }
  })
})
