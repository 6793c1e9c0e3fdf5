import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { Weave, thread, type AnyThreadType, type ThreadEnd } from 'raiment'
import { tempDir } from './support/tmp.js'

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

async function open(threads: Record<string, AnyThreadType> = {}) {
  return Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads: { child, ...threads }, dumps: false, ioLibs: false })
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
