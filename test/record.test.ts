/**
 * `record()` and the dumps it makes: the type name it records (so `raiment replay` finds the
 * type), the shapes `dumpText()` and `replay()` refuse, and `raiment replay` of a recorded dump in
 * a directory outside the repository that holds only the thread file and the dump (no
 * node_modules, no package.json): the CLI makes `raiment` importable for the thread file.
 */
import { describe, expect, test } from 'vitest'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { InvalidArgument, InvalidDump, thread, Weave } from 'raiment'
import { dumpText, readDump, record, replay } from 'raiment/testing'
import greet from '../threads/greet.js'
import pong from '../threads/ping-pong/pong.js'
import { raimentAsUser, ROOT } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const inline = thread({
  uses: ['clock'],
  async does() {
    return typeof (await this.clock.now())
  },
})

describe('record() names the thread type as a weave does', () => {
  test('a module under threads/ is named by its path there, without extension', async () => {
    const { dump, result } = await record(greet, { name: 'ada' })
    expect(result).toEqual({ greeted: 'ada', greeting: 'hello ada' })
    expect(dump.thread.type).toBe('greet')
    // threads/ping-pong/pong.ts, given no params, fails at once: its dump still names its type.
    const nested = await record(pong, undefined as never)
    expect(nested.end.status).toBe('failed')
    expect(nested.dump.thread.type).toBe('ping-pong/pong')
  })

  test('a type declared elsewhere is named by its file; an explicit name wins; a bad name is refused', async () => {
    expect((await record(inline, undefined)).dump.thread.type).toBe('record.test')
    expect((await record(inline, undefined, { name: 'clocks/read' })).dump.thread.type).toBe('clocks/read')
    await expect(record(inline, undefined, { name: '' })).rejects.toThrow(InvalidArgument)
    await expect(record({ uses: [], does: async () => 1 } as never, undefined)).rejects.toMatchObject({
      code: 'RAIMENT_INVALID_ARGUMENT',
      message: expect.stringContaining('record() expects a thread type first'),
    })
    // A CommonJS thread module imported from an ES module (a user's tsx script): its exports.
    await expect(record({ __esModule: true, default: inline } as never, undefined)).rejects.toThrow(/got the module object of a CommonJS module whose default export is one: pass its \.default, or make the project an ES module/)
  })
})

describe('record() of a thread that spawns a type it was not given', () => {
  test("its spawn fails saying to pass the type in record()'s threads option, not to reload a threads directory", async () => {
    const spawner = thread({
      uses: ['threads'],
      async does() {
        return await this.threads.join(await this.threads.spawn('greet', { name: 'ada' }))
      },
    })
    const { end } = await record(spawner, undefined, { name: 'spawner' })
    if (end.status !== 'failed') throw new Error(`expected the recording to fail, it ended ${end.status}`)
    const error = end.error as Error & { code?: string }
    expect(error.code).toBe('RAIMENT_UNKNOWN_THREAD_TYPE')
    expect(error.message).toContain("record() runs the thread in a weave that knows only the type it records and those of its 'threads' option: pass each type the thread spawns there, record(type, params, { threads: { 'greet': … } })")
    expect(error.message).not.toMatch(/threads directory|raiment reload/)
    // Given it, the spawn runs.
    expect((await record(spawner, undefined, { name: 'spawner', threads: { greet } })).result).toEqual({ greeted: 'ada', greeting: 'hello ada' })
  })

  test('a weave given its types as objects says to give it the type there', async () => {
    const dir = tempDir('raiment-record-')
    const weave = await Weave.open({ db: join(dir, 'w.db'), threads: { greet }, ioLibs: false, dumps: false, durability: 'memory' })
    try {
      expect(() => weave.spawn('nope', undefined)).toThrow("This weave was given its thread types as objects (Weave.open's threads: { … }) and knows those alone: give it 'nope' there too.")
    } finally {
      await weave.close()
    }
  })
})

describe('dumpText() and replay() take a dump, not what record() returns', () => {
  test('the wrapper is refused with what to pass instead', async () => {
    const recording = await record(inline, undefined)
    for (const attempt of [() => dumpText(recording as never), () => replay(inline, recording as never)]) {
      let err: unknown
      try {
        await attempt()
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(InvalidDump)
      expect(err).toMatchObject({ code: 'RAIMENT_INVALID_DUMP', message: expect.stringContaining("its 'dump' property is the dump") })
    }
    const text = dumpText(recording.dump)
    expect(readDump(text).thread.type).toBe('record.test')
    expect((await replay(inline, text)).result).toBe('number')
  })

  test("a dump file's text parsed (JSON.parse: superjson's { json, meta }) is read as its text is (a user trial: \"no 'format' field\")", async () => {
    const text = dumpText((await record(inline, undefined)).dump)
    const parsed = JSON.parse(text) as unknown
    expect(readDump(parsed as never)).toEqual(readDump(text))
    expect((await replay(inline, parsed as never)).result).toBe('number')
    // Left as it was, to be read again.
    expect(parsed).toEqual(JSON.parse(text))
  })

  test('a misspelt option is refused, not ignored', async () => {
    const { dump } = await record(inline, undefined)
    await expect(replay(inline, dump, { strcit: false } as never)).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: "replay(): unknown option 'strcit'; the options are strict, ioLibs, at, set, libraries" })
    await expect(record(inline, undefined, { nmae: 'x' } as never)).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringContaining("record(): unknown option 'nmae'") })
    await expect(replay(inline, dump, null as never)).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT' })
  })
})

/** An actor: adds up the numbers it is sent until one is 'stop' (or, with `timeout`, none comes in time). */
const adder = thread({
  uses: ['mailbox'],
  async does(p: { timeout?: number } | undefined) {
    let sum = 0
    for (;;) {
      const m = p?.timeout === undefined ? await this.mailbox.receive() : await this.mailbox.receive({ timeout: p.timeout })
      if (typeof m !== 'number') return sum
      sum += m
    }
  },
})

describe('record() of a thread that receives messages', () => {
  test('sends it `messages` in order; it ends as it would', async () => {
    const { end, result } = await record(adder, undefined, { messages: [1, 2, 3, 'stop'] })
    expect(end.status).toBe('done')
    expect(result).toBe(6)
  })

  test('a thread left waiting for a message with none to come ends the recording as waiting; its dump replays unfinished', async () => {
    const { end, dump, result } = await record(adder, undefined, { messages: [1, 2] })
    expect(end).toEqual({ id: dump.thread.id, type: 'record.test', status: 'waiting', for: expect.stringMatching(/^a message/) })
    expect(result).toBeUndefined()
    const run = await replay(adder, dump)
    expect(run.status).toBe('unfinished')
    expect(run.next).toMatch(/^mailbox\.take\(.*\(ordinal 2\)$/)
    expect(dump.entries.map((e) => e.call)).toEqual(['mailbox.take', 'mailbox.take'])
  })

  test('a receive with a timeout is waited for: the recording ends with the thread', async () => {
    const { end, result } = await record(adder, { timeout: 50 }, { messages: [4] })
    expect(end.status).toBe('done')
    expect(result).toBe(4)
  })

  test("a thread whose child still runs is not left waiting: the child's exit message comes, and then it ends", async () => {
    const parent = thread({
      uses: ['mailbox', 'threads', 'clock'],
      async does(p: { child?: boolean } | undefined) {
        if (p?.child) {
          await this.clock.sleep(150)
          return 'child done'
        }
        await this.threads.spawn('family', { child: true })
        return this.mailbox.receive()
      },
    })
    const { end } = await record(parent, undefined, { name: 'family' })
    expect(end).toMatchObject({ status: 'done', result: { status: 'done', result: 'child done' } })
  })

  test('a thread that joins a child that waits for ever is left waiting, not hung', async () => {
    const parent = thread({
      uses: ['mailbox', 'threads'],
      async does(p: { child?: boolean } | undefined) {
        if (p?.child) return this.mailbox.receive()
        return this.threads.join(await this.threads.spawn('joins', { child: true }))
      },
    })
    const { end } = await record(parent, undefined, { name: 'joins' })
    expect(end).toMatchObject({ status: 'waiting', for: expect.stringMatching(/^the end of /) })
  })

  test('a parent and the child types it spawns (`threads`): they run beside it, and its dump replays without them (a user trial)', async () => {
    const child = thread({ uses: ['clock'], async does(p: { n: number }) { await this.clock.now(); return p.n * 10 } })
    const parent = thread({
      uses: ['threads'],
      async does() {
        const ids = [await this.threads.spawn('kids/child', { n: 1 }), await this.threads.spawn('kids/child', { n: 2 })]
        let sum = 0
        for (const id of ids) sum += (await this.threads.join(id)) as number
        return sum
      },
    })
    const { end, dump } = await record(parent, undefined, { name: 'parent', threads: { 'kids/child': child } })
    expect(end).toMatchObject({ status: 'done', result: 30 })
    expect(await replay(parent, dump)).toMatchObject({ status: 'done', result: 30 })
    await expect(record(parent, undefined, { threads: { 'kids/child': { uses: [] } as never } })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringContaining("'threads' must map names to thread types") })
  })

  test('messages that are not an array are refused', async () => {
    await expect(record(adder, undefined, { messages: 5 as never })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringContaining("'messages' must be an array") })
  })
})

describe('raiment replay of a recorded dump', () => {
  test('finds the recorded type in --threads, in a directory with only the thread file and the dump', async () => {
    const { dump } = await record(greet, { name: 'ada' })
    const dir = tempDir('raiment-replay-anywhere-')
    mkdirSync(join(dir, 'threads'))
    copyFileSync(join(ROOT, 'threads', 'greet.ts'), join(dir, 'threads', 'greet.ts'))
    writeFileSync(join(dir, 'greet-ada.json'), dumpText(dump))
    const out = await raimentAsUser(dir, 'replay', 'greet-ada.json', '--threads', 'threads')
    expect(out.stderr).toBe('')
    expect(out.stdout).toContain('(greet) from greet-ada.json')
    expect(out.stdout).toContain('which equals the recorded result')
    expect(out.code).toBe(0)
  })
})
