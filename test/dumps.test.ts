/**
 * Dumps and raiment/testing's replay of them (src/dump.ts, src/testing.ts): a dump replays
 * whatever its calls' arguments held, and an edit of them still counts; a dump is one commit of
 * the journal, even while its weave commits; a replay hands the thread copies, so a dump replays
 * the same however often; a thread type other than the dump's, and a dump with no usable format
 * or seq, are refused with InvalidDump saying what is wrong.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { dumpText, InvalidDump, makeDump, ReplayDivergence, thread } from 'raiment'
import { readDump, record, replay } from 'raiment/testing'
import { encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import checkout from '../threads/checkout.js'
import { cliRun } from './support/cli-in-process.js'
import { PausingJournal } from './support/pausing-journal.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    dumped: {
      take(...args: unknown[]): Promise<number>
      cart(): Promise<{ items: string[] }>
    }
  }
}

const dumped = {
  async take(..._args: unknown[]) {
    return 1
  },
  async cart() {
    return { items: ['a'] }
  },
}

const opts = { libraries: { dumped }, ioLibs: false as const, name: 'dumped' }

describe('a dump replays whatever its calls were given', () => {
  const sparse: number[] = []
  sparse[0] = 1
  sparse[2] = 3
  // Arguments whose recorded text their decoded value does not encode to again.
  const odd = thread({
    uses: ['fs', 'log', 'dumped'],
    async does() {
      try {
        await this.fs.readFile('/no/such/file')
      } catch (e) {
        await this.log.error('could not read the config', { err: e })
      }
      await this.dumped.take(new RangeError('r'), sparse, new Date(NaN), new Float64Array([NaN, Infinity]))
      return 'ok'
    },
  })

  test('an Error, a sparse array, an invalid Date, a Float64Array of NaN: the dump, its text, and its text read, all replay', async () => {
    const { dump, end } = await record(odd, undefined, opts)
    expect(end.status).toBe('done')
    // The recorded text is kept only where the shown args do not give it back.
    expect(dump.entries.map((e) => [e.call, e.argsText !== undefined])).toEqual([
      ['fs.readFile', false],
      ['log.error', true],
      ['dumped.take', true],
    ])
    for (const d of [dump, dumpText(dump), readDump(dumpText(dump))]) {
      const run = await replay(odd, d, { ioLibs: false })
      expect(run.status).toBe('done')
      expect(run.result).toBe('ok')
      expect(run.calls).toHaveLength(3)
    }
  })

  test('an edit of the args is what the replay matches, where the recorded text is kept too', async () => {
    const { dump } = await record(odd, undefined, opts)
    const edited = readDump(dumpText(dump))
    const logged = edited.entries.find((e) => e.call === 'log.error')!
    ;(logged.args[1] as { err: Error }).err.message = 'edited by hand'
    const err = await replay(odd, edited, { ioLibs: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ReplayDivergence)
    expect((err as Error).message).toContain('edited by hand')
  })
})


test('a dump is one commit of the journal: a commit of the weave between its reads is not in it', async () => {
  const file = join(tempDir(), 'snap.db')
  // The owner, committing as a weave's group commit does.
  const owner = new Journal(file, { durability: 'memory' })
  const add = (seq: number) => owner.addEntry('t/1', seq, `dumped.take:[${seq}]`, 0, 1, 'J1', Date.now(), 0, () => {})
  owner.insertThread('t/1', 'dumped', encodeValue({}), null, 'running')
  for (let seq = 0; seq < 3; seq++) {
    add(seq)
    owner.flushNow()
  }
  const reader = new PausingJournal(file, { readonly: true })
  try {
    const before = makeDump(reader, 't/1')
    expect(before.entries.map((e) => e.seq)).toEqual([0, 1, 2])
    // Between the row and the entries: a batch of 8 (straight into journal_main, the tail moved
    // there first), and the thread's end.
    reader.between = () => {
      reader.between = null
      for (let seq = 3; seq < 11; seq++) add(seq)
      owner.endThread('t/1', 'done', encodeValue('over'))
      owner.flushNow()
    }
    const during = makeDump(reader, 't/1')
    expect(during).toEqual(before)
    const after = makeDump(reader, 't/1')
    expect(after.thread.status).toBe('done')
    expect(after.entries.map((e) => e.seq)).toEqual([...Array(11).keys()])
  } finally {
    reader.close()
    owner.close()
  }
})

test('a replay hands the thread copies: a thread that changes its params and outcomes leaves the dump as it was', async () => {
  const changer = thread({
    uses: ['dumped'],
    async does(p: { seen: number }) {
      const cart = await this.dumped.cart()
      cart.items.push('b')
      p.seen++
      return { n: cart.items.length, seen: p.seen }
    },
  })
  const { dump, result } = await record(changer, { seen: 0 }, opts)
  expect(result).toEqual({ n: 2, seen: 1 })
  const fixture = readDump(dumpText(dump))
  for (let i = 0; i < 3; i++) expect((await replay(changer, fixture, { ioLibs: false })).result).toEqual({ n: 2, seen: 1 })
  expect(fixture).toEqual(readDump(dumpText(dump)))
})

describe('what replay refuses, saying what is wrong', () => {
  const greetAda = join(import.meta.dirname, '..', 'fixtures', 'greet-ada.json')

  test("a thread type of threads/ named otherwise than the dump's, whose replay diverges: the divergence says so first, naming both", async () => {
    const err = await replay(checkout, greetAda, { ioLibs: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ReplayDivergence)
    expect((err as Error).message).toMatch(/^the dump was recorded from thread type 'greet', and replay\(\) was given thread type 'checkout' \(threads\/\), which diverged from it at outcome #1 of \d+/)
    expect((err as Error).message).toContain('replay the dump with that one (threads/greet)')
    const run = await replay(checkout, greetAda, { ioLibs: false, strict: false })
    expect(run.divergence?.message).toMatch(/^the dump was recorded from thread type 'greet'/)
  })

  test('a format below 1, or an entry with no seq (or a seq twice): InvalidDump saying what to do', () => {
    const raw = JSON.parse(readFileSync(greetAda, 'utf8')) as { json: { format: number; entries: Array<{ seq?: number }> } }
    const edit = (f: (j: typeof raw.json) => void): string => {
      const copy = structuredClone(raw)
      f(copy.json)
      return JSON.stringify(copy)
    }
    for (const format of [0, -1]) {
      expect(() => readDump(edit((j) => (j.format = format)))).toThrow(new RegExp(`'format' is ${format}, and dump formats are whole numbers from 1`))
    }
    expect(() => readDump(edit((j) => delete j.entries[0]!.seq))).toThrow(/entries\[0\] \(clock\.now\) has no seq; each entry needs seq/)
    expect(() => readDump(edit((j) => (j.entries[1]!.seq = j.entries[0]!.seq)))).toThrow(/entries\[1\] \(\S+\) has seq 0, as an entry before it does/)
    expect(() => readDump(edit((j) => (j.format = 0)))).toThrow(InvalidDump)
  })

  test('a file holding only the format: not a complete dump, and how one is made', async () => {
    const file = join(tempDir(), 'bare.json')
    writeFileSync(file, '{"format":1}')
    const how = /is not a usable Raiment dump: no 'thread.type', so it is not a complete dump; a dump holds a thread and its record: raiment dump ID -o FILE writes one/
    expect(() => readDump(file)).toThrow(how)
    const r = await cliRun(['replay', file])
    expect(r.code).not.toBe(0)
    expect(r.printed.join('')).toMatch(how)
  })

  test('an entry edited by hand: null, a bad ord, ok false with no error are InvalidDump; an error with no fields replays', async () => {
    const raw = JSON.parse(readFileSync(greetAda, 'utf8')) as { json: { entries: Array<Record<string, unknown> | null> } }
    const edit = (f: (j: typeof raw.json) => void): string => {
      const copy = structuredClone(raw)
      f(copy.json)
      return JSON.stringify(copy)
    }
    expect(() => readDump(edit((j) => (j.entries[0] = null)))).toThrow(/entries\[0\] needs call \(string\), args \(array\), ord \(a whole number from 0\)/)
    expect(() => readDump(edit((j) => (j.entries[0]!['ord'] = -1)))).toThrow(InvalidDump)
    expect(() => readDump(edit((j) => Object.assign(j.entries[0]!, { ok: false })))).toThrow(/entries\[0\] \(clock\.now\) has ok false and no error \{ name, message \}/)
    const failing = edit((j) => {
      const e = j.entries[0]!
      delete e['value']
      Object.assign(e, { ok: false, error: { name: 'Error', message: 'boom' } })
    })
    const greet = (await import('../threads/greet.js')).default
    const run = await replay(greet, failing, { ioLibs: false, strict: false })
    // The edited error reached the thread, which threw it, before the rest of its record.
    expect(run.status).toBe('failed')
    expect(run.divergence?.message).toContain('It threw Error: boom.')
  })
})

describe('replay with the libraries given to record()', () => {
  test("a library's thread-side method, given as record() was, replays; without it, the replay cannot make its calls", async () => {
    const kv = {
      default: {
        async get(k: string) {
          return k.length
        },
      },
      threadSide: {
        async twice(this: { get(k: string): Promise<number> }, k: string) {
          return (await this.get(k)) * 2
        },
      },
    }
    const t = thread({
      uses: ['dumped'],
      async does() {
        return (this.dumped as unknown as { twice(k: string): Promise<number> }).twice('abc')
      },
    })
    const { dump, result } = await record(t, undefined, { name: 'kv', libraries: { dumped: kv }, ioLibs: false })
    expect(result).toBe(6)
    expect((await replay(t, dump, { ioLibs: false, libraries: { dumped: kv } })).result).toBe(6)
    expect((await replay(t, dump, { ioLibs: false, strict: false })).status).toBe('failed')
  })
})

test('a result no journal can hold fails the replay as it failed the live run (RAIMENT_UNRECORDABLE)', async () => {
  const t = thread({
    uses: ['clock'],
    async does() {
      const at = await this.clock.now()
      return { at, cb: () => at }
    },
  })
  const { dump, end } = await record(t, undefined, { name: 'unrecordable', ioLibs: false })
  expect(end).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_UNRECORDABLE' } })
  const run = await replay(t, dump, { ioLibs: false })
  expect(run.status).toBe('failed')
  expect(run.error).toMatchObject({ code: 'RAIMENT_UNRECORDABLE' })
})
