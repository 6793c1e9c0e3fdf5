import { describe, expect, it, vi } from 'vitest'
import { join } from 'node:path'
import { makeDump, supervisor, Weave, thread, type AnyThreadType, type ThreadEnd } from 'raiment'
import { replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    plan: {
      /** What the next start of a flaky child does (and when it started, for the test). */
      next(): Promise<{ sleep?: number; fail: boolean; hang?: boolean }>
    }
  }
}

/** A child that registers under its name, then fails when told to, or ends when told to stop. */
const child = thread({
  uses: ['mailbox', 'registry'],
  async does(p: { name: string }) {
    await this.registry.register(p.name)
    const m = await this.mailbox.receive<'fail' | 'stop'>()
    if (m === 'fail') throw new Error(`${p.name} failed`)
    return p.name
  },
})

/** A child that does what the plan says for its start: sleeps, then fails or ends; or hangs. */
const flaky = thread({
  uses: ['plan', 'clock'],
  async does() {
    const step = await this.plan.next()
    if (step.sleep !== undefined) await this.clock.sleep(step.sleep)
    if (step.hang) await this.clock.sleep(3_600_000)
    if (step.fail) throw new Error('flaky failed')
    return 'ok'
  },
})

type Step = { sleep?: number; fail: boolean; hang?: boolean }

/** The plan library: hands out `steps` in order, one per start, and notes when each start came. */
function plan(steps: Step[]) {
  const starts: number[] = []
  const waiters: Array<[number, () => void]> = []
  return {
    starts,
    /** Gaps between consecutive starts, in ms. */
    gaps: () => starts.slice(1).map((t, i) => t - starts[i]!),
    /** Resolves once `n` children have started. */
    started: (n: number) => new Promise<void>((resolve) => (starts.length >= n ? resolve() : waiters.push([n, resolve]))),
    lib: {
      async next(): Promise<Step> {
        starts.push(performance.now())
        for (const [n, resolve] of waiters) if (starts.length >= n) resolve()
        return steps[starts.length - 1] ?? { fail: false, hang: true }
      },
    },
  }
}

async function open(threads: Record<string, AnyThreadType> = {}, libraries: Record<string, object> = { plan: plan([]).lib }) {
  return Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads: { child, flaky, ...threads }, libraries, dumps: false, ioLibs: false })
}

/** Waits for the next commit, then until every name is registered to a live thread; their ids. */
async function registered(weave: Weave, names: string[]): Promise<string[]> {
  for (;;) {
    await weave.committed()
    await new Promise((r) => setImmediate(r))
    const ids = names.map((n) => weave.messages.whereis(n))
    if (ids.every((x) => x !== null)) return ids
  }
}

async function tell(weave: Weave, name: string, msg: string): Promise<void> {
  weave.messages.send(null, name, msg, `test:${name}:${msg}:${Math.random()}`)
  await weave.committed()
}

const specs = (restart: string) => ['a', 'b', 'c'].map((name) => ({ type: 'child', params: { name }, restart }))

async function restartedAfterFailing(strategy: string, failing: string): Promise<Record<string, boolean>> {
  const weave = await open()
  const sup = weave.spawn('raiment/supervisor', { strategy, children: specs('permanent') })
  const before = await registered(weave, ['a', 'b', 'c'])
  await tell(weave, failing, 'fail')
  // Wait for the failed child to be replaced.
  let after = before
  while (after[['a', 'b', 'c'].indexOf(failing)] === before[['a', 'b', 'c'].indexOf(failing)]) after = await registered(weave, ['a', 'b', 'c'])
  // Let the strategy finish its restarts: all names held by live threads again.
  await weave.committed()
  after = await registered(weave, ['a', 'b', 'c'])
  for (const n of ['a', 'b', 'c']) await tell(weave, n, 'stop')
  weave.kill(sup)
  await weave.close()
  return Object.fromEntries(['a', 'b', 'c'].map((n, i) => [n, after[i] !== before[i]]))
}

describe('the supervisor', () => {
  it('one-for-one restarts only the failed child', async () => {
    expect(await restartedAfterFailing('one-for-one', 'b')).toEqual({ a: false, b: true, c: false })
  })

  it('one-for-all restarts every child', async () => {
    expect(await restartedAfterFailing('one-for-all', 'b')).toEqual({ a: true, b: true, c: true })
  })

  it('rest-for-one restarts the failed child and those started after it', async () => {
    expect(await restartedAfterFailing('rest-for-one', 'b')).toEqual({ a: false, b: true, c: true })
  })

  it('does not restart temporary children, nor transient ones that ended normally', async () => {
    const weave = await open()
    const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'child', params: { name: 't' }, restart: 'temporary' }, { type: 'child', params: { name: 'r' }, restart: 'transient' }] })
    await registered(weave, ['t', 'r'])
    await tell(weave, 't', 'fail')
    await tell(weave, 'r', 'stop')
    expect(await weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 0 } })
    await weave.close()
  })

  it('takes no message for an exit but an exit message: one shaped like it without a status stops nothing', async () => {
    const weave = await open()
    const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'child', params: { name: 'r' }, restart: 'transient' }] })
    await registered(weave, ['r'])
    weave.send(sup, { exit: 'someone/1' })
    weave.send(sup, { exit: 'someone/2', status: 'gone' })
    await weave.committed()
    await tell(weave, 'r', 'stop')
    expect(await weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 0 } })
    await weave.close()
  })

  it('restarts a failing child after an exponential back-off, capped, then gives up by intensity', async () => {
    const p = plan(Array(6).fill({ fail: true }))
    const weave = await open({}, { plan: p.lib })
    const sup = weave.spawn('raiment/supervisor', {
      children: [{ type: 'flaky' }],
      backoff: { initial: 40, factor: 2, max: 120 },
      intensity: { restarts: 4, withinMs: 60_000 },
    })
    expect(await weave.join(sup)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_SUPERVISOR_GAVE_UP' } })
    // Five starts: the first, then four restarts, each after its wait (40, 80, 120, 120 ms).
    expect(p.starts).toHaveLength(5)
    const gaps = p.gaps()
    for (const [k, wait] of [40, 80, 120, 120].entries()) expect(gaps[k], `gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(wait - 1)
    await weave.close()
  })

  it('by default waits 10 ms before the first restart, then 20, then 40', async () => {
    const p = plan([{ fail: true }, { fail: true }, { fail: true }])
    const weave = await open({}, { plan: p.lib })
    const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'flaky' }] })
    await p.started(4)
    const gaps = p.gaps()
    for (const [k, wait] of [10, 20, 40].entries()) expect(gaps[k], `gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(wait - 1)
    weave.kill(sup)
    await weave.close()
  })

  it('starts the back-off again from the initial wait once a child ran well (resetAfter)', async () => {
    const p = plan([{ fail: true }, { fail: true }, { sleep: 400, fail: true }, { fail: true }, { fail: false }])
    const weave = await open({}, { plan: p.lib })
    const sup = weave.spawn('raiment/supervisor', {
      children: [{ type: 'flaky', restart: 'transient' }],
      backoff: { initial: 100, factor: 4, max: 10_000, resetAfter: 300 },
    })
    expect(await weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 4 } })
    const [g0, g1, g2, g3] = p.gaps() as [number, number, number, number]
    const gaps = `gaps ${p.gaps().join(', ')}`
    expect(g0, gaps).toBeGreaterThanOrEqual(99)
    expect(g1, gaps).toBeGreaterThanOrEqual(399)
    // The third child ran 400 ms (>= resetAfter) before failing: it waited 100 ms again, not 1,600.
    expect(g2, gaps).toBeGreaterThanOrEqual(499)
    expect(g2, gaps).toBeLessThan(1_500)
    // ...and the next wait grows from there: 400 ms.
    expect(g3, gaps).toBeGreaterThanOrEqual(399)
    await weave.close()
  })

  it('a weave down during a back-off is no time the child ran: its next back-off grows on, not from the initial wait', async () => {
    const p = plan([{ fail: true }, { fail: true }, { fail: true }, { fail: false }])
    const db = join(tempDir(), 'w.db')
    const reopen = () => Weave.open({ db, durability: 'memory', threads: { child, flaky }, libraries: { plan: p.lib }, dumps: false, ioLibs: false })
    let weave = await reopen()
    const sup = weave.spawn('raiment/supervisor', {
      children: [{ type: 'flaky', restart: 'transient' }],
      backoff: { initial: 100, factor: 2, max: 200, resetAfter: 300 },
    })
    // The second start failed: a back-off of 200 ms begins (its exit taken by number, the time read twice:
    // when it failed, and for the wait). The weave is down past it, longer than resetAfter.
    await p.started(2)
    const backingOff = (): boolean => {
      const keys = weave.journal.entriesNow(sup).map((e) => e[1])
      const taken = keys.map((k) => k.startsWith('mailbox.takeNumber:'))
      const takes = taken.filter(Boolean).length
      const last = taken.lastIndexOf(true)
      return takes >= 2 && keys.slice(last + 1).filter((k) => k.startsWith('clock.now:')).length >= 2
    }
    await expect.poll(backingOff, { timeout: 10_000, interval: 5 }).toBe(true)
    await weave.close()
    const down = performance.now()
    await new Promise((r) => setTimeout(r, 700))
    weave = await reopen()
    try {
      expect(await weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 3 } })
    } finally {
      await weave.close()
    }
    const [, , at2, at3] = p.starts as [number, number, number, number]
    expect(at2).toBeGreaterThan(down)
    // The third start failed at once: the next wait is 200 ms (grown on), not 100 (started again).
    expect(at3 - at2, `gaps ${p.gaps().join(', ')}`).toBeGreaterThanOrEqual(199)
  })

  /** A weave whose thread starts are timed, and a way to wait for a name to change hands. */
  async function timedStarts() {
    const weave = await open()
    const started = new Map<string, number>()
    weave.on('thread-start', ({ id }) => started.set(id, performance.now()))
    /** Waits until `name` is held by a thread other than `old`; its id. */
    const renewed = async (name: string, old: string): Promise<string> => {
      for (;;) {
        const [id] = await registered(weave, [name])
        if (id !== old) return id!
      }
    }
    /** Fails `name` twice (its second wait is 10 x the first); when it failed the second time. */
    const failTwice = async (name: string, id: string): Promise<[string, number]> => {
      await tell(weave, name, 'fail')
      const again = await renewed(name, id)
      await tell(weave, name, 'fail')
      return [again, performance.now()]
    }
    return { weave, started, renewed, failTwice }
  }
  const slow = { initial: 100, factor: 10, max: 10_000 }

  it('one-for-one: a child that fails during the back-off of another restarts after its own', async () => {
    const { weave, started, renewed, failTwice } = await timedStarts()
    const sup = weave.spawn('raiment/supervisor', { children: specs('permanent'), backoff: slow })
    const [a0, b0] = (await registered(weave, ['a', 'b', 'c'])) as [string, string, string]
    const [b1, bFailed] = await failTwice('b', b0) // b now waits 1,000 ms
    await tell(weave, 'a', 'fail') // a waits 100 ms, during b's wait
    const aFailed = performance.now()
    const a1 = await renewed('a', a0)
    const b2 = await renewed('b', b1)
    expect(started.get(a1)! - aFailed).toBeLessThan(900)
    expect(started.get(a1)!).toBeLessThan(started.get(b2)!)
    expect(started.get(b2)! - bFailed).toBeGreaterThanOrEqual(900)
    for (const n of ['a', 'b', 'c']) await tell(weave, n, 'stop')
    weave.kill(sup)
    await weave.close()
  })

  it('rest-for-one: a group restart waits for the longest back-off among its children, then starts them in order', async () => {
    const { weave, started, renewed, failTwice } = await timedStarts()
    const sup = weave.spawn('raiment/supervisor', { strategy: 'rest-for-one', children: specs('permanent'), backoff: slow })
    const [a0, b0, c0] = (await registered(weave, ['a', 'b', 'c'])) as [string, string, string]
    const [c1, cFailed] = await failTwice('c', c0) // c now waits 1,000 ms
    await tell(weave, 'b', 'fail') // b would wait 100 ms, but restarts with c
    const b1 = await renewed('b', b0)
    const c2 = await renewed('c', c1)
    expect(started.get(b1)! - cFailed).toBeGreaterThanOrEqual(900)
    expect(started.get(b1)!).toBeLessThanOrEqual(started.get(c2)!)
    expect(weave.messages.whereis('a')).toBe(a0)
    for (const n of ['a', 'b', 'c']) await tell(weave, n, 'stop')
    weave.kill(sup)
    await weave.close()
  })

  it('replays a record of its back-offs without waiting them again', async () => {
    const p = plan([{ fail: true }, { fail: true }, { fail: false }])
    const weave = await open({}, { plan: p.lib })
    const t0 = performance.now()
    const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'flaky', restart: 'transient' }], backoff: { initial: 500, factor: 1 } })
    expect(await weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 2 } })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(999)
    await weave.committed()
    const dump = makeDump(weave.journal, sup)
    await weave.close()
    expect(dump.entries.some((e) => e.call === 'mailbox.peek' && e.args.length === 2)).toBe(true)
    // No timer of a back-off's length is set: the replay does not wait them again.
    const timers = vi.spyOn(globalThis, 'setTimeout')
    try {
      const run = await replay(supervisor, dump)
      expect(run.result).toEqual({ restarted: 2 })
      expect(timers.mock.calls.filter(([, ms]) => typeof ms === 'number' && ms >= 100)).toEqual([])
    } finally {
      timers.mockRestore()
    }
  })

  it('links each child in its spawn: a supervisor killed the moment its child starts leaves no child running', async () => {
    const weave = await open()
    let sup = ''
    const killed: string[] = []
    // The child's spawn is durable: before, the supervisor's link was a call still to make.
    weave.on('thread-start', (e) => {
      if (e.type === 'child' && killed.length === 0) killed.push(e.id, String(weave.kill(sup)))
    })
    sup = weave.spawn('raiment/supervisor', { children: [{ type: 'child', params: { name: 'orphan?' } }] })
    expect(await weave.join(sup)).toMatchObject({ status: 'killed' })
    expect(killed[1]).toBe('true')
    // Before, it went on running, unlinked: this join never returned.
    expect(await weave.join(killed[0]!)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
    await weave.close()
  })

  it('replays a record made before children were spawned linked (a spawn, then a link call)', async () => {
    const p = plan([{ fail: true }, { fail: false }])
    const weave = await open({}, { plan: p.lib })
    const sup = weave.spawn('raiment/supervisor', { children: [{ type: 'flaky', restart: 'transient' }], backoff: { initial: 0 } })
    expect(await weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 1 } })
    await weave.committed()
    const dump = makeDump(weave.journal, sup)
    await weave.close()
    // The record as the supervisor before made it: no marker, each spawn unlinked and followed by a link.
    const entries: typeof dump.entries = []
    for (const e of dump.entries.filter((x) => x.call !== 'patch.patched').sort((x, y) => x.seq - y.seq)) {
      if (e.call !== 'threads.spawn') entries.push(e)
      else {
        // (Spawned holding the child's messages for its successor too, a later change.)
        expect(e.args[2]).toMatchObject({ link: true })
        entries.push({ ...e, args: e.args.slice(0, 2) }, { ...e, call: 'threads.link', args: [e.value], value: true })
      }
    }
    // Numbered again: seq in order, ord among the calls with the same request.
    const seen = new Map<string, number>()
    const ord = (e: (typeof entries)[number]): number => {
      const k = e.call + JSON.stringify(e.args)
      const n = seen.get(k) ?? 0
      seen.set(k, n + 1)
      return n
    }
    const old = { ...dump, entries: entries.map((e, i) => ({ ...e, seq: i, ord: ord(e) })) }
    expect((await replay(supervisor, old)).result).toEqual({ restarted: 1 })
    expect((await replay(supervisor, dump)).result).toEqual({ restarted: 1 })
  })

  it('refuses wrong params before it starts any child, naming the option and the value', async () => {
    const weave = await open()
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /params must be an object with children, got undefined/],
      [{ children: [] }, /children must be a non-empty array .*, got \[\]/],
      [{ children: [{ type: 'child' }], backof: {} }, /unknown option 'backof' in the params \(the options are children, strategy, intensity, backoff\)/],
      [{ children: [{ type: 'child', restart: 'always' }] }, /children\[0\]\.restart must be one of permanent, transient, temporary, got "always"/],
      [{ children: [{ type: 'child' }, { name: 'x' }] }, /unknown option 'name' in children\[1\]/],
      [{ children: [{ type: 7 }] }, /children\[0\]\.type must be the name of a thread type, got 7/],
      [{ children: [{ type: 'child' }], strategy: 'one-for-some' }, /strategy must be one of one-for-one, one-for-all, rest-for-one, got "one-for-some"/],
      [{ children: [{ type: 'child' }], intensity: { restarts: -1, withinMs: 10 } }, /intensity\.restarts must be a whole number from 0 up, got -1/],
      [{ children: [{ type: 'child' }], intensity: { restarts: 3 } }, /intensity\.withinMs must be a number from 1 up, got undefined/],
      [{ children: [{ type: 'child' }], backoff: { initial: -5 } }, /backoff\.initial must be a number from 0 up, got -5/],
      [{ children: [{ type: 'child' }], backoff: { factor: 0.5 } }, /backoff\.factor must be a number from 1 up, got 0\.5/],
      [{ children: [{ type: 'child' }], backoff: { initial: 100, max: 50 } }, /backoff\.max must be a number from 100 up, got 50/],
      [{ children: [{ type: 'child' }], backoff: { initial: '10' } }, /backoff\.initial must be a number from 0 up, got "10"/],
      [{ children: [{ type: 'child' }], backoff: { initial: Number.NaN } }, /backoff\.initial must be a number from 0 up, got NaN\./],
      [{ children: [{ type: 'child' }], backoff: { maximum: 10 } }, /unknown option 'maximum' in backoff \(the options are initial, factor, max, resetAfter\)/],
      [{ children: [{ type: 'child' }], backoff: 100 }, /backoff must be \{ initial\?, factor\?, max\?, resetAfter\? \}, got 100/],
    ]
    for (const [params, message] of cases) {
      const end = (await weave.join(weave.spawn('raiment/supervisor', params))) as Extract<ThreadEnd, { status: 'failed' }>
      expect(end.status, JSON.stringify(params)).toBe('failed')
      expect(end.error).toMatchObject({ name: 'InvalidArgument', code: 'RAIMENT_INVALID_ARGUMENT' })
      expect(end.error.message).toMatch(/^raiment\/supervisor: /)
      expect(end.error.message).toMatch(message)
      expect(end.error.message).toContain('Example params: {"children":')
    }
    await weave.committed()
    expect(weave.journal.threads({ type: 'child' })).toEqual([])
    await weave.close()
  })

  it('gives up after too many restarts, and its own parent sees it fail', async () => {
    const parent = thread({
      uses: ['threads', 'mailbox'],
      async does() {
        const s = await this.threads.spawn('raiment/supervisor', { children: [{ type: 'child', params: { name: 'x' } }], intensity: { restarts: 2, withinMs: 60_000 } })
        return await this.mailbox.receive({ match: { exit: s } })
      },
    })
    const weave = await open({ parent })
    const p = weave.spawn('parent')
    let last = ''
    for (let i = 0; i < 3; i++) {
      // Wait for a fresh child x, then fail it.
      let id: string
      do id = (await registered(weave, ['x']))[0]!
      while (id === last)
      last = id
      await tell(weave, 'x', 'fail')
    }
    const end = (await weave.join(p)) as Extract<ThreadEnd, { status: 'done' }>
    expect(end.result).toMatchObject({ status: 'failed', error: { name: 'SupervisorGaveUp', code: 'RAIMENT_SUPERVISOR_GAVE_UP' } })
    await weave.close()
  })

  it('supervisors nest: killing the top one ends the whole tree', async () => {
    const weave = await open()
    const top = weave.spawn('raiment/supervisor', {
      children: [{ type: 'raiment/supervisor', params: { children: [{ type: 'child', params: { name: 'leaf' } }] } }],
    })
    const [leaf] = await registered(weave, ['leaf'])
    const inner = weave.journal.thread(leaf!)!.parent!
    weave.kill(top)
    // The inner supervisor traps exits: it hears its parent went, stops its children, and fails.
    expect(await weave.join(leaf!)).toMatchObject({ status: 'killed' })
    expect(await weave.join(inner)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
    await weave.close()
  })
})
