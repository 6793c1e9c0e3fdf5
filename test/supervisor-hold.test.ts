/**
 * A supervisor restart loses no message: a child that is to restart has what it had not received,
 * and its names, held for its successor, which gets them in its spawn; sends to its name during the
 * back-off wait for it. A supervisor that will not restart it (gives up, ends) lets them go: the
 * messages to the dead letters, the names free.
 * Reproduce a property failure with FC_SEED=<seed>.
 */
import { fc, test as propTest } from '@fast-check/vitest'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeDump, supervisor, thread, Weave, type AnyThreadType } from 'raiment'
import { replay } from 'raiment/testing'
import type { SuccessionOptions } from '../io-libs/threads.js'
import { encodeValue } from '../src/encoding.js'
import { cliOut } from './support/cli-in-process.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    holdSeen: {
      /** Notes a message a worker received (outside the journal: once per receive, live). */
      got(worker: string, m: unknown): Promise<void>
    }
  }
}

type Msg = { s: number; i: number } | { fail: true } | { stop: true }

/** Registers `name`, then notes every message it receives; fails on `{ fail }`, ends on `{ stop }`. */
const worker = thread({
  uses: ['mailbox', 'registry', 'holdSeen', 'threads'],
  async does(p: { name: string }) {
    await this.registry.register(p.name)
    const me = await this.threads.self()
    for (;;) {
      const m = await this.mailbox.receive<Msg>()
      if ('fail' in m) throw new Error(`${p.name} fails on purpose`)
      if ('stop' in m) return 'stopped'
      await this.holdSeen.got(me, m)
    }
  },
})

/** A worker that waits to be told to start receiving (its backlog builds up meanwhile). */
const slow = thread({
  uses: ['mailbox', 'registry', 'holdSeen', 'threads'],
  async does(p: { name: string }) {
    await this.registry.register(p.name)
    const me = await this.threads.self()
    await this.mailbox.receive({ match: { go: true } })
    for (;;) {
      const m = await this.mailbox.receive<Msg>()
      if ('fail' in m) throw new Error(`${p.name} fails on purpose`)
      if ('stop' in m) return 'stopped'
      await this.holdSeen.got(me, m)
    }
  },
})

/** Spawns a thread that claims to succeed `victim` (only its keeper may). */
const thief = thread({
  uses: ['threads'],
  async does(p: { victim: string }) {
    // The supervisor's option (not on a thread's SpawnOptions), passed as the supervisor does.
    const opts: SuccessionOptions = { succeeds: p.victim }
    return await this.threads.spawn('slow', { name: 'thiefs-own' }, opts)
  },
})

function seen() {
  const got: Array<{ worker: string; m: { s: number; i: number } }> = []
  const waiters: Array<[number, () => void]> = []
  return {
    got,
    /** Resolves once `n` messages were received. */
    reached: (n: number) => new Promise<void>((resolve) => (got.length >= n ? resolve() : waiters.push([n, resolve]))),
    lib: {
      async got(w: string, m: unknown): Promise<void> {
        got.push({ worker: w, m: m as { s: number; i: number } })
        for (const [n, resolve] of waiters) if (got.length >= n) resolve()
      },
    },
  }
}

async function open(s: ReturnType<typeof seen>, dir = tempDir()) {
  const threads: Record<string, AnyThreadType> = { worker, slow, thief }
  return Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads, libraries: { holdSeen: s.lib }, dumps: false, ioLibs: false })
}

function send(weave: Weave, to: string, m: unknown): void {
  const r = weave.send(to, m)
  expect(r.delivered, JSON.stringify(r)).toBe(true)
}

function deadLetters(weave: Weave): Array<{ recipient: string; body: string; reason: string }> {
  return weave.journal.db.prepare('SELECT recipient, body, reason FROM dead_letters ORDER BY n').all() as Array<{ recipient: string; body: string; reason: string }>
}

/** Resolves once thread `type` number `n` (1 = the first) has registered `name` and is alive. */
async function holder(weave: Weave, name: string, type: string, n: number): Promise<string> {
  for (;;) {
    const ids = weave.journal.threads({ type }).map((t) => t.id)
    const id = weave.messages.whereis(name)
    if (ids.length >= n && id === ids[n - 1]) return id
    await weave.committed()
    await new Promise((r) => setImmediate(r))
  }
}

/** Resolves once thread `id` ended. */
function ended(weave: Weave, id: string): Promise<void> {
  return new Promise((resolve) => {
    if (!weave.isAlive(id)) return resolve()
    const on = (e: { id: string }): void => {
      if (e.id !== id) return
      weave.off('thread-end', on)
      resolve()
    }
    weave.on('thread-end', on)
  })
}

describe('a supervisor restart', () => {
  it('hands the backlog and what was sent by name during the back-off to the restarted worker, in order, once', async () => {
    const s = seen()
    const weave = await open(s)
    try {
      const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'slow', params: { name: 'w3' }, restart: 'transient' }], backoff: { initial: 300, factor: 1, max: 300 } })
      const first = await holder(weave, 'w3', 'slow', 1)
      // A backlog: the worker does not receive until told to, and then fails first.
      send(weave, 'w3', { fail: true })
      for (let i = 0; i < 5; i++) send(weave, 'w3', { s: 1, i })
      const firstEnded = ended(weave, first)
      send(weave, 'w3', { go: true })
      await firstEnded
      await weave.committed()
      // During the back-off: the name is still held, by the ended worker, and what is sent to it waits.
      expect(weave.isAlive(first)).toBe(false)
      for (let i = 5; i < 10; i++) send(weave, 'w3', { s: 1, i })
      send(weave, first, { s: 2, i: 0 })
      await weave.committed()
      expect(deadLetters(weave)).toEqual([])
      const db = weave.journal.db
      expect(db.prepare('SELECT count(*) FROM inbox WHERE thread = ?').pluck().get(first)).toBe(11)
      expect(db.prepare('SELECT thread FROM names WHERE name = ?').pluck().get('w3')).toBe(first)
      // Another thread cannot take the name meanwhile.
      expect(() => weave.messages.register('w3', sup)).toThrow(expect.objectContaining({ code: 'RAIMENT_NAME_TAKEN', message: expect.stringContaining(`held for the successor of thread ${first}`) }))

      const second = await holder(weave, 'w3', 'slow', 2)
      expect(second).not.toBe(first)
      for (let i = 10; i < 12; i++) send(weave, 'w3', { s: 1, i })
      send(weave, 'w3', { go: true })
      await s.reached(13)
      expect(s.got.map((g) => g.worker)).toEqual(Array(13).fill(second))
      expect(s.got.map((g) => g.m)).toEqual([...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => ({ s: 1, i })), { s: 2, i: 0 }, { s: 1, i: 10 }, { s: 1, i: 11 }])
      // raiment show of the first worker says where its messages went (while the supervisor lives).
      expect(await cliOut(['show', first, '--db', weave.journal.file])).toContain(`its messages and names went to its successor ${second}`)
      send(weave, 'w3', { stop: true })
      expect((await weave.join(sup)).status).toBe('done')
      await weave.committed()
      expect(deadLetters(weave)).toEqual([])
      expect(db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
      // The supervisor's end deletes its successions.
      expect(db.prepare('SELECT count(*) FROM successions').pluck().get()).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('lets the held messages go to the dead letters, and frees the name, when the supervisor gives up', async () => {
    const s = seen()
    const weave = await open(s)
    try {
      // No restart allowed: the first failure is one too many.
      const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'slow', params: { name: 'w4' } }], intensity: { restarts: 0, withinMs: 60_000 }, backoff: { initial: 10 } })
      const first = await holder(weave, 'w4', 'slow', 1)
      send(weave, 'w4', { fail: true })
      send(weave, 'w4', { s: 1, i: 0 })
      send(weave, 'w4', { go: true })
      const end = await weave.join(sup)
      expect(end.status).toBe('failed')
      await weave.committed()
      expect(deadLetters(weave)).toEqual([{ recipient: first, body: encodeValue({ s: 1, i: 0 }, 'the message'), reason: `the recipient ended and its supervisor ${sup} did not restart it` }])
      expect(weave.messages.whereis('w4')).toBe(null)
      expect(weave.journal.db.prepare('SELECT count(*) FROM names').pluck().get()).toBe(0)
      expect(weave.journal.db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
      // The name is free: a send to it now is a dead letter saying so.
      expect(weave.send('w4', 'late').delivered).toBe(false)
    } finally {
      await weave.close()
    }
  })

  it('lets them go when the supervisor is killed during the back-off', async () => {
    const s = seen()
    const weave = await open(s)
    try {
      const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'worker', params: { name: 'w5' } }], backoff: { initial: 60_000 } })
      const first = await holder(weave, 'w5', 'worker', 1)
      const firstEnded = ended(weave, first)
      send(weave, 'w5', { fail: true })
      await firstEnded
      send(weave, 'w5', { s: 1, i: 0 })
      await weave.committed()
      expect(deadLetters(weave)).toEqual([])
      weave.kill(sup)
      await weave.join(sup)
      await weave.committed()
      expect(deadLetters(weave)).toEqual([{ recipient: first, body: encodeValue({ s: 1, i: 0 }, 'the message'), reason: `the recipient ended and its supervisor ${sup} did not restart it` }])
      expect(weave.messages.whereis('w5')).toBe(null)
      expect(weave.journal.db.prepare('SELECT count(*) FROM names').pluck().get()).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('replays a record made before it held messages for the successor (spawns linked, without hold)', async () => {
    const s = seen()
    const weave = await open(s)
    let dump
    try {
      const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'worker', params: { name: 'w7' }, restart: 'transient' }], backoff: { initial: 0 } })
      const first = await holder(weave, 'w7', 'worker', 1)
      send(weave, 'w7', { fail: true })
      await holder(weave, 'w7', 'worker', 2)
      send(weave, 'w7', { stop: true })
      expect(await weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 1 } })
      await weave.committed()
      dump = makeDump(weave.journal, sup)
      const spawns = dump.entries.filter((e) => e.call === 'threads.spawn').map((e) => e.args[2])
      expect(spawns).toEqual([
        { link: true, hold: ['failed', 'killed'] },
        { link: true, hold: ['failed', 'killed'], succeeds: first },
      ])
    } finally {
      await weave.close()
    }
    // As the supervisor before made it: no marker of this change, each spawn only linked.
    const entries = dump.entries
      .filter((e) => !(e.call === 'patch.patched' && e.args[0] === 'raiment/supervisor: hold for the successor'))
      .sort((x, y) => x.seq - y.seq)
      .map((e, i) => ({ ...e, seq: i, ...(e.call === 'threads.spawn' ? { args: [e.args[0], e.args[1], { link: true }], ord: 0 } : {}) }))
    // The two spawns have the same request now: ordinals 0 and 1.
    let spawnOrd = 0
    for (const e of entries) if (e.call === 'threads.spawn') e.ord = spawnOrd++
    expect((await replay(supervisor, { ...dump, entries })).result).toEqual({ restarted: 1 })
    expect((await replay(supervisor, dump)).result).toEqual({ restarted: 1 })
  })

  it('raiment send by the name, with no weave running during the back-off, waits for the restarted worker', async () => {
    const s = seen()
    const dir = tempDir()
    let weave = await open(s, dir)
    let closed = false
    try {
      weave.spawn('raiment/supervisor', { children: [{ type: 'worker', params: { name: 'w8' } }], backoff: { initial: 500, factor: 1, max: 500 } })
      const first = await holder(weave, 'w8', 'worker', 1)
      const firstEnded = ended(weave, first)
      send(weave, 'w8', { fail: true })
      await firstEnded
      await weave.close()
      closed = true
      expect(await cliOut(['send', '--db', join(dir, 'w.db'), 'w8', '{"s":1,"i":0}'])).toContain('"delivered":true')
      weave = await open(s, dir)
      closed = false
      await s.reached(1)
      expect(s.got).toEqual([{ worker: weave.messages.whereis('w8'), m: { s: 1, i: 0 } }])
      expect(deadLetters(weave)).toEqual([])
    } finally {
      if (!closed) await weave.close()
    }
  })

  it('a restarted supervisor does not get the exit messages its predecessor left unread', async () => {
    const s = seen()
    const weave = await open(s)
    try {
      // The inner supervisor gives up at its first failure: it kills nb, whose exit message it leaves unread.
      const inner = { children: [{ type: 'worker', params: { name: 'na' } }, { type: 'worker', params: { name: 'nb' } }], intensity: { restarts: 0, withinMs: 60_000 } }
      const outer = weave.spawn('raiment/supervisor', { children: [{ type: 'raiment/supervisor', params: inner }], backoff: { initial: 0 } })
      await holder(weave, 'nb', 'worker', 2)
      const inner1 = weave.journal.threads({ type: 'raiment/supervisor' }).map((t) => t.id).find((id) => id !== outer)!
      const innerEnded = ended(weave, inner1)
      send(weave, 'na', { fail: true })
      await innerEnded
      // The second inner supervisor runs its own children, and they take messages.
      await holder(weave, 'nb', 'worker', 4)
      send(weave, 'nb', { s: 1, i: 0 })
      await s.reached(1)
      await weave.committed()
      const sups = weave.journal.threads({ type: 'raiment/supervisor' })
      expect(sups.map((t) => t.status)).toEqual(['running', 'failed', 'running'])
      expect(deadLetters(weave)).toEqual([])
    } finally {
      await weave.close()
    }
  }, 15_000)

  it('holds nothing for a temporary child', async () => {
    const s = seen()
    const weave = await open(s)
    try {
      weave.spawn('raiment/supervisor', { children: [{ type: 'slow', params: { name: 'w6' }, restart: 'temporary' }] })
      const first = await holder(weave, 'w6', 'slow', 1)
      const firstEnded = ended(weave, first)
      send(weave, 'w6', { fail: true })
      send(weave, 'w6', { s: 1, i: 0 })
      send(weave, 'w6', { go: true })
      await firstEnded
      await weave.committed()
      expect(deadLetters(weave).map((d) => d.reason)).toEqual(['the recipient ended before receiving it'])
      expect(weave.messages.whereis('w6')).toBe(null)
    } finally {
      await weave.close()
    }
  })

  it('refuses a succeeds from a thread that is not the keeper: the held messages and names stay for the restarted worker', async () => {
    const s = seen()
    const weave = await open(s)
    try {
      const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'slow', params: { name: 'w8' } }], backoff: { initial: 500, factor: 1, max: 500 } })
      const first = await holder(weave, 'w8', 'slow', 1)
      send(weave, 'w8', { fail: true })
      send(weave, 'w8', { s: 1, i: 0 })
      const firstEnded = ended(weave, first)
      send(weave, 'w8', { go: true })
      await firstEnded
      await weave.committed()
      const end = await weave.join(weave.spawn('thief', { victim: first }))
      expect(end).toMatchObject({ status: 'failed' })
      expect(end.status === 'failed' && end.error).toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringContaining(`held for the successor its keeper ${sup} spawns`) })
      expect(weave.journal.threads({ type: 'slow' })).toHaveLength(1)
      // During the back-off the name answers the held thread, as other weaves are told.
      expect(weave.messages.whereis('w8')).toBe(first)
      const second = await holder(weave, 'w8', 'slow', 2)
      send(weave, 'w8', { go: true })
      await s.reached(1)
      expect(s.got).toEqual([{ worker: second, m: { s: 1, i: 0 } }])
    } finally {
      await weave.close()
    }
  })

  it('delivers a keyed send once: a retry after the message passed to the successor is a duplicate, by the name or the old id', async () => {
    const s = seen()
    const weave = await open(s)
    try {
      weave.spawn('raiment/supervisor', { children: [{ type: 'slow', params: { name: 'w7' }, restart: 'transient' }], backoff: { initial: 50, factor: 1, max: 50 } })
      const first = await holder(weave, 'w7', 'slow', 1)
      send(weave, 'w7', { fail: true })
      expect(weave.send('w7', { s: 1, i: 0 }, { key: 'req-1' })).toEqual({ delivered: true, to: first })
      const firstEnded = ended(weave, first)
      send(weave, 'w7', { go: true })
      await firstEnded
      const second = await holder(weave, 'w7', 'slow', 2)
      // Before and after the successor's spawn commits.
      expect(weave.send('w7', { s: 1, i: 0 }, { key: 'req-1' })).toMatchObject({ duplicate: true })
      await weave.committed()
      expect(weave.send('w7', { s: 1, i: 0 }, { key: 'req-1' })).toMatchObject({ duplicate: true })
      expect(weave.send(first, { s: 1, i: 0 }, { key: 'req-1' })).toMatchObject({ duplicate: true })
      expect(weave.send(second, { s: 1, i: 0 }, { key: 'req-1' })).toMatchObject({ duplicate: true })
      await weave.committed()
      expect(weave.journal.db.prepare('SELECT body FROM inbox WHERE thread = ? ORDER BY n').pluck().all(second)).toEqual([encodeValue({ s: 1, i: 0 }, 'the message')])
      expect(deadLetters(weave)).toEqual([])
    } finally {
      await weave.close()
    }
  })
})

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`supervisor-hold: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

/** A step: a message from sender `s`, a failure of the worker, or a pause of `ms` (the worker runs, or restarts, meanwhile). */
type Step = { send: number } | { fail: true } | { pause: number }
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 2 }).map((s) => ({ send: s })) },
  { weight: 1, arbitrary: fc.constant({ fail: true as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 8 }).map((ms) => ({ pause: ms })) },
)

propTest.prop([fc.array(step, { minLength: 1, maxLength: 40 }), fc.constantFrom('permanent', 'transient')], { seed, numRuns: 25 })(
  'random sends and failures: every message received exactly once, in the order each sender sent',
  async (steps, restart) => {
    const s = seen()
    const weave = await open(s)
    try {
      weave.spawn('raiment/supervisor', { children: [{ type: 'worker', params: { name: 'wp' }, restart }], intensity: { restarts: 1000, withinMs: 60_000 }, backoff: { initial: 3, factor: 1, max: 3 } })
      await holder(weave, 'wp', 'worker', 1)
      const next = [0, 0, 0]
      let total = 0
      for (const st of steps) {
        if ('send' in st) {
          send(weave, 'wp', { s: st.send, i: next[st.send]!++ })
          total++
        } else if ('fail' in st) send(weave, 'wp', { fail: true })
        else await new Promise((r) => setTimeout(r, st.pause))
      }
      await s.reached(total)
      await weave.committed()
      expect(s.got.length).toBe(total)
      for (let sender = 0; sender < 3; sender++) {
        expect(s.got.filter((g) => g.m.s === sender).map((g) => g.m.i)).toEqual([...Array(next[sender]).keys()])
      }
      expect(deadLetters(weave)).toEqual([])
    } finally {
      await weave.close()
    }
  },
  60_000,
)
