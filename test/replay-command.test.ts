/**
 * `raiment replay` of records that had not ended as a return or a throw: a record that ends
 * where the thread continued as new, and the record of a thread killed (or moved on) while it
 * waited, which stops where it was then, as `raiment check` tells it. Real `raiment` processes,
 * and dumps of real runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { dumpText, makeDump, Weave, type Dump } from 'raiment'
import { readDump, record, replay } from 'raiment/testing'
import { loadThreadTypes } from '../src/thread-types.js'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { projectWith } from './support/threads-dir.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const THREADS = {
  'cont.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['random', 'threads'],
  async does(p: { n: number }) {
    const v = await this.random.int(0, 10)
    if (p.n < 2) return this.threads.continueAsNew({ n: p.n + 1, v })
    return { final: p.n, v }
  },
})
`,
  'odd.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock'],
  async does(p: { how: string }) {
    await this.clock.now()
    if (p.how === 'undefined') throw undefined
    if (p.how === 'string') throw 'plain string'
    const o = Object.create(null)
    o.a = [1, , 3]
    o.when = new Date(NaN)
    return o
  },
})
`,
  'hang.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock'],
  async does() {
    await this.clock.now()
    await new Promise(() => {})
  },
})
`,
  'waiter.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock', 'mailbox'],
  async does() {
    await this.clock.now()
    return await this.mailbox.receive()
  },
})
`,
}

const SLOW = 60_000

async function replayed(dir: string, name: string, dump: Dump): Promise<{ code: number | null; out: string }> {
  writeFileSync(join(dir, name), dumpText(dump))
  const r = await raiment(dir, 'replay', name, '--threads', 'threads', '--io-libs', 'io-libs')
  return { code: r.code, out: r.stdout + r.stderr }
}

test('a record that ends where the thread continued as new: its params, and whether the recording had ended', async () => {
  const dir = projectWith(THREADS)
  const cont = (await loadThreadTypes(join(dir, 'threads'))).types.get('cont')!
  const { dump } = await record(cont, { n: 0 }, { name: 'cont', ioLibs: false })
  const v = dump.entries[0]!.value as number
  // The last run's record as the first run's: dumped after its outcome was committed and before
  // the switch was.
  const { result: _result, continued: _continued, ...rest } = dump.thread
  const first: Dump = { ...dump, thread: { ...rest, params: { n: 0 }, status: 'running' } }
  const running = await replayed(dir, 'first.json', first)
  expect(running.out).toContain('it continued as new (threads.continueAsNew) with params:')
  expect(running.out).toContain(JSON.stringify({ n: 1, v }))
  expect(running.out).toContain('which is where the record ends: the thread was still running when it was dumped, before the switch to the new run was recorded')
  expect(running.out).not.toContain('RAIMENT_INTERNAL')
  expect(running.code).toBe(0)
  // A recording that returned there: a different end.
  const done = await replayed(dir, 'done.json', { ...first, thread: { ...first.thread, status: 'done', result: { final: 0, v } } })
  expect(done.out).toContain('it continued as new')
  expect(done.out).toContain('but the recording returned a result')
  expect(done.code).toBe(1)
}, SLOW)

test('the record of a thread killed, or moved on, while it waited ends where it was then: not a divergence', async () => {
  const dir = projectWith(THREADS)
  const { types } = await loadThreadTypes(join(dir, 'threads'))
  const weave = await Weave.open({ db: join(dir, 'k.db'), durability: 'memory', threads: { waiter: types.get('waiter')! }, ioLibs: false, dumps: false, passivateAfter: false })
  let killed: Dump
  try {
    const id = weave.spawn('waiter', {})
    // Killed before or after its clock.now is recorded: either way its replay asks for more than
    // its record holds, where it waited when killed.
    expect(weave.kill(id)).toBe(true)
    expect((await weave.join(id)).status).toBe('killed')
    killed = makeDump(weave.journal, id)
  } finally {
    await weave.close()
  }
  expect(killed.thread.status).toBe('killed')
  const k = await replayed(dir, 'killed.json', killed)
  expect(k.out).toContain('it made every recorded call, then asked for one the record does not hold yet')
  expect(k.out).toContain('which is where the record ends: the thread was killed there')
  expect(k.code).toBe(0)
  const moved = await replayed(dir, 'moved.json', { ...killed, thread: { ...killed.thread, status: 'moved' } })
  expect(moved.out).toContain('which is where the record ends: the thread moved to another weave there')
  expect(moved.code).toBe(0)
  // replay() in a test agrees: unfinished, strict or not, with the request where the record ends.
  const waiter = types.get('waiter')!
  const run = await replay(waiter, killed, { ioLibs: false })
  expect(run).toMatchObject({ status: 'unfinished', next: expect.stringMatching(/ \(ordinal 0\)$/) })
  expect(run.divergence).toBeUndefined()
  // Of a thread that had ended, asking for more than its record is a divergence.
  await expect(replay(waiter, { ...killed, thread: { ...killed.thread, status: 'done', result: 1 } }, { ioLibs: false })).rejects.toMatchObject({ code: 'RAIMENT_REPLAY_DIVERGENCE' })
  // Failed by its weave where its record stops (its code changed, its type went): not an end of its own.
  const byWeave: Dump = { ...killed, thread: { ...killed.thread, status: 'failed', error: { name: 'ReplayDivergence', message: 'thread diverged', fields: { code: 'RAIMENT_REPLAY_DIVERGENCE' } } } }
  expect(await replay(waiter, byWeave, { ioLibs: false })).toMatchObject({ status: 'unfinished' })
  const f = await replayed(dir, 'failed-by-weave.json', byWeave)
  expect(f.out).toContain('which is where the record ends: its weave failed the thread there, with ReplayDivergence: thread diverged')
  expect(f.code).toBe(0)
  // A failure the thread's code threw is its end: more asked for is a divergence.
  const byItself: Dump = { ...killed, thread: { ...killed.thread, status: 'failed', error: { name: 'Error', message: 'boom', fields: {} } } }
  await expect(replay(waiter, byItself, { ioLibs: false })).rejects.toMatchObject({ code: 'RAIMENT_REPLAY_DIVERGENCE' })
}, SLOW)

test('a thread that throws what is not an Error, or returns what is only equal as encoded: replayed as it ran, no crash, no false difference', async () => {
  const dir = projectWith(THREADS)
  const odd = (await loadThreadTypes(join(dir, 'threads'))).types.get('odd')!
  for (const how of ['undefined', 'string']) {
    const { dump, end } = await record(odd, { how }, { name: 'odd', ioLibs: false })
    expect(end.status).toBe('failed')
    const run = await replay(odd, dump)
    expect(run.error).toBeInstanceOf(Error)
    expect(run.error!.message).toBe(how === 'string' ? 'non-error thrown: plain string' : 'non-error thrown: undefined')
    const cli = await replayed(dir, `${how}.json`, dump)
    expect(cli.out).toContain('which is the recorded error')
    expect(cli.out).not.toContain('RAIMENT_INTERNAL')
    expect(cli.code).toBe(0)
  }
  const { dump } = await record(odd, { how: 'value' }, { name: 'odd', ioLibs: false })
  const cli = await replayed(dir, 'value.json', dump)
  expect(cli.out).toContain('which equals the recorded result')
  expect(cli.code).toBe(0)
  // The recorded result's keys in another order: equal all the same.
  const r = dump.thread.result as { a: unknown; when: unknown }
  const swapped = await replayed(dir, 'swapped.json', { ...dump, thread: { ...dump.thread, result: { when: r.when, a: r.a } } })
  expect(swapped.out).toContain('which equals the recorded result')
  expect(swapped.code).toBe(0)
}, SLOW)

test('a record holding a value of a class the project registers (in io-libs): raiment dump writes it, raiment replay and replay() read it', async () => {
  const dir = projectWith({
    'coiner.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['bank'],
  async does() {
    return await (this as any).bank.mint(5)
  },
})
`,
  })
  mkdirSync(join(dir, 'io-libs'))
  writeFileSync(
    join(dir, 'io-libs', 'bank.ts'),
    `import { registerClass } from '${RAIMENT}'
export class Coin5a { constructor(public n = 0) {} }
registerClass(Coin5a, 'Coin5a')
export default { async mint(n: number) { return new Coin5a(n) } }
`,
  )
  const spawned = await raiment(dir, 'spawn', 'coiner', '--wait')
  expect(spawned.code, spawned.stderr).toBe(0)
  const id = /spawned (\S+?)[;\s]/.exec(spawned.stderr)![1]!
  const dumped = await raiment(dir, 'dump', id, '-o', 'coin.json')
  expect(dumped.code, dumped.stderr).toBe(0)
  const replayedCli = await raiment(dir, 'replay', 'coin.json')
  expect(replayedCli.stdout + replayedCli.stderr).toContain('which equals the recorded result')
  expect(replayedCli.code).toBe(0)
  const coiner = (await loadThreadTypes(join(dir, 'threads'))).types.get('coiner')!
  const run = await replay(coiner, join(dir, 'coin.json'), { ioLibs: join(dir, 'io-libs') })
  expect(run.result).toMatchObject({ n: 5 })
  expect((run.result as object).constructor.name).toBe('Coin5a')
  // The UI's dump: the same, from where it runs (the project's directories given).
  const ui = raimentProcess(tmpdir(), ['ui', '--db', join(dir, 'raiment.db'), '--threads', join(dir, 'threads'), '--io-libs', join(dir, 'io-libs')])
  try {
    await ui.until((o) => /token: \S+\n/.test(o))
    const url = /raiment ui: (\S+)/.exec(ui.stdout)![1]!
    const res = await fetch(`${url.replace(/\/$/, '')}/dump?id=${encodeURIComponent(id)}`)
    expect(res.status).toBe(200)
    expect(readDump(await res.text()).thread.result).toMatchObject({ n: 5 })
  } finally {
    ui.child.kill('SIGTERM')
    await ui.ended
  }
  // Without the module that registers it: a clear error with its code, naming the class.
  const lost = await raiment(dir, 'dump', id, '--io-libs', 'nowhere')
  expect(lost.code).toBe(1)
  expect(lost.stderr).toMatch(/RAIMENT_UNKNOWN_CLASS: .*class 'Coin5a'.*--io-libs/)
}, SLOW)

test('a thread that waits on a promise of its own: raiment replay says it is stuck (exit 1), not a silent exit 13', async () => {
  const dir = projectWith(THREADS)
  const { types } = await loadThreadTypes(join(dir, 'threads'))
  const weave = await Weave.open({ db: join(dir, 'h.db'), durability: 'memory', threads: { hang: types.get('hang')! }, ioLibs: false, dumps: false, passivateAfter: false })
  let dump: Dump
  try {
    const id = weave.spawn('hang', {})
    await expect.poll(() => weave.journal.entriesNow(id).length).toBe(1)
    dump = makeDump(weave.journal, id)
  } finally {
    await weave.close()
  }
  const r = await replayed(dir, 'hang.json', dump)
  expect(r.out).toMatch(/it stopped, waiting on something that is not a call through this\.<library> \(a timer, a promise of its own\)/)
  expect(r.code).toBe(1)
}, SLOW)

test("whose failure a record holds decides where it ends: the weave's (a linked exit) stops it where it was; the thread's own (an uncaught spawn of an unknown type) is its end", async () => {
  const { thread } = await import('raiment')
  const linked = thread({
    uses: ['threads', 'mailbox'],
    async does(p: { child?: boolean } | undefined) {
      if (p?.child) throw new Error('child fails')
      await this.threads.spawn('linked', { child: true }, { link: true })
      return this.mailbox.receive({ match: { never: true } })
    },
  })
  const ended = await record(linked, undefined, { name: 'linked' })
  expect(ended.end).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
  expect(ended.dump.thread.error).toMatchObject({ weave: true })
  expect(await replay(linked, ended.dump)).toMatchObject({ status: 'unfinished' })

  const typo = thread({
    uses: ['threads', 'clock'],
    async does() {
      await this.threads.spawn('nope', {})
    },
  })
  const own = await record(typo, undefined, { name: 'typo' })
  expect(own.end).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_UNKNOWN_THREAD_TYPE' } })
  expect(own.dump.thread.error?.weave).toBeUndefined()
  // New code that goes on past the record of a thread that had ended: a divergence.
  const goesOn = thread({
    uses: ['threads', 'clock'],
    async does() {
      await this.threads.spawn('nope', {}).catch(() => {})
      await this.clock.now()
    },
  })
  await expect(replay(goesOn, own.dump)).rejects.toMatchObject({ code: 'RAIMENT_REPLAY_DIVERGENCE' })
}, SLOW)

test("a dump whose thread type the threads directory lacks: the error says the dump names it, and --threads", async () => {
  const dir = projectWith(THREADS)
  const cont = (await loadThreadTypes(join(dir, 'threads'))).types.get('cont')!
  const { dump } = await record(cont, { n: 0 }, { name: 'cont', ioLibs: false })
  const r = await replayed(dir, 'other.json', { ...dump, thread: { ...dump.thread, type: 'nosuch' } })
  expect(r.code).toBe(1)
  expect(r.out).toMatch(/^raiment: RAIMENT_UNKNOWN_THREAD_TYPE: unknown thread type 'nosuch'/m)
  expect(r.out).toContain("The dump names it (its thread's type): replay it where that type's module is, with --threads DIR (threads now)")
  expect(r.out).not.toContain('raiment reload')
}, SLOW)
