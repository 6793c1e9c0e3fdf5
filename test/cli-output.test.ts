/**
 * The CLI as a tool for scripts and terminals, run as real processes on real journals: `--json`
 * outputs hold whole records, `show` prints dates and whole values with --full and names
 * Raiment's own calls, `ps --limit`, every error line starts with its code, an empty --db file is
 * refused untouched, `spawn --wait` stopped by a signal says so and does not exit 0, and a reader
 * that closes the pipe early (`| head -1`) ends the output quietly.
 */
import { copyFileSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import superjson from 'superjson'
import { describe, expect, test } from 'vitest'
import { fc, test as fcTest } from '@fast-check/vitest'
import { encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { describeError } from '../src/cli/common.js'
import { decodeShown, jsonValue } from '../src/cli/records.js'
import { sharedTempDir as tempDir } from './support/tmp.js'
import { bash, raiment, raimentProcess, RAIMENT_SH, THREADS, type Ended } from './support/raiment-process.js'

const T = ['--threads', THREADS]

/** Each test starts several Node processes, each loading TypeScript through tsx. */
const SLOW = 180_000
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

/** What `f` threw. */
function captured(f: () => unknown): unknown {
  try {
    f()
  } catch (e) {
    return e
  }
  throw new Error('it threw nothing')
}

/** One line on stderr, `raiment: CODE: …`, and a failing exit status. */
function expectError(r: Ended, code: string, re: RegExp = /./): void {
  expect(r.code, r.stderr).not.toBe(0)
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(new RegExp(`^raiment: ${code}: `))
  expect(lines[0]).toMatch(re)
}

describe('--json and show', () => {
  test.concurrent('--json on spawn --wait, ps, show and dead-letters holds whole values; show --full shows them whole', async () => {
    const dir = tempDir()
    const name = 'ada-' + 'x'.repeat(400)
    const waited = await raiment(dir, 'spawn', 'greet', JSON.stringify({ name }), '--wait', '--json', ...T)
    expect(waited.code, waited.stderr).toBe(0)
    const end = JSON.parse(waited.stdout) as Record<string, unknown>
    expect(end).toMatchObject({ type: 'greet', status: 'done', parent: null, calls: 6, params: { name }, result: { greeted: name, greeting: `hello ${name}` } })
    expect(end['created']).toMatch(ISO)
    expect(end['ended']).toMatch(ISO)
    const id = end['id'] as string

    const listener = (await raiment(dir, 'spawn', 'listener', '--json', ...T)).stdout
    expect(JSON.parse(listener)).toMatchObject({ type: 'listener', status: 'pending', calls: 0, params: { $type: 'undefined' } })
    const letter = { long: 'y'.repeat(300) }
    expect((await raiment(dir, 'send', 'nobody', JSON.stringify(letter))).code).toBe(1)

    const [ps, show, full, cut, letters] = await Promise.all([
      raiment(dir, 'ps', '--json'),
      raiment(dir, 'show', id, '--json'),
      raiment(dir, 'show', id, '--full'),
      raiment(dir, 'show', id),
      raiment(dir, 'dead-letters', '--json'),
    ])
    const threads = JSON.parse(ps.stdout) as Array<Record<string, unknown>>
    expect(threads.map((t) => t['type'])).toEqual(['greet', 'listener'])
    expect(threads[0]).toEqual(end)

    const shown = JSON.parse(show.stdout) as { thread: unknown; calls: Array<Record<string, unknown>> }
    expect(shown.thread).toEqual(end)
    expect(shown.calls.map((c) => c['call'])).toEqual(['clock.now', 'random.uuid', 'log.info', 'clock.now', 'clock.sleepUntil', 'log.info'])
    const hello = shown.calls[2]!
    expect(hello).toMatchObject({ seq: 2, ord: 0, ok: true, value: { $type: 'undefined' }, via: null })
    expect((hello['args'] as unknown[])[0]).toBe(`hello ${name}`)
    expect(hello['started']).toMatch(ISO)
    expect(typeof hello['ms']).toBe('number')

    // Text: dates, not epoch numbers; values cut to a column, or whole with --full.
    expect(cut.stdout.split('\n')[0]).toMatch(new RegExp(`^${id}  greet  done  created \\d{4}-\\S+Z  ended \\d{4}-\\S+Z$`))
    expect(cut.stdout).toMatch(/^SEQ\s+STARTED\s+CALL\s+ARGS\s+OUTCOME\s+MS\s+OK\s+VIA$/m)
    expect(cut.stdout).toMatch(/^0\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+clock\.now\s+\[\]\s+\d+\s+[\d.]+\s+ok$/m)
    expect(cut.stdout).not.toContain(`hello ${name}`)
    expect(cut.stderr).toMatch(/--full shows them whole/)
    expect(full.stdout).toContain(`["hello ${name}",{"at":"`)
    expect(full.stdout).toContain(`params {"name":"${name}"}`)
    expect(full.stdout).toContain(`result {"greeted":"${name}","greeting":"hello ${name}"}`)
    expect(full.stderr).toBe('')

    expect(JSON.parse(letters.stdout)).toEqual([
      { n: 1, at: expect.stringMatching(ISO), sender: null, recipient: 'nobody', reason: "no thread is registered as 'nobody'", message: letter },
    ])
  }, SLOW)

  test.concurrent("show names the calls Raiment's own helpers made (mailbox.receive), in text and JSON", async () => {
    const dir = tempDir()
    const id = (await raiment(dir, 'spawn', 'listener', ...T)).stdout.trim()
    expect((await raiment(dir, 'send', id, '{"hi":1}')).code).toBe(0)
    // A weave runs the listener, which takes the message that waits in its inbox.
    const weave = raimentProcess(dir, ['start', ...T])
    await weave.until((out) => out.includes(`done ${id} listener`))
    weave.child.kill('SIGTERM')
    expect((await weave.ended).code).toBe(0)
    const [text, json] = await Promise.all([raiment(dir, 'show', id), raiment(dir, 'show', id, '--json')])
    expect(text.stdout).toMatch(/^0\s+\S+Z\s+mailbox\.take\s+{}\s+{"n":1,.*\s+ok\s+mailbox\.receive$/m)
    const calls = (JSON.parse(json.stdout) as { calls: Array<{ call: string; via: string | null; value: unknown }> }).calls
    expect(calls).toEqual([expect.objectContaining({ call: 'mailbox.take', via: 'mailbox.receive', value: { n: 1, from: null, message: { hi: 1 } } })])
  }, SLOW)

  test.concurrent('ps --limit N lists the newest N; a bad N is refused at the door', async () => {
    const dir = tempDir()
    const ids: string[] = []
    for (const n of ['a', 'b', 'c']) ids.push((await raiment(dir, 'spawn', 'greet', JSON.stringify({ name: n }), ...T)).stdout.trim())
    const [two, json, zero, negative, word, huge] = await Promise.all([
      raiment(dir, 'ps', '--limit', '2'),
      raiment(dir, 'ps', '-n', '1', '--json'),
      raiment(dir, 'ps', '--limit', '0'),
      raiment(dir, 'ps', '--limit=-1'),
      raiment(dir, 'ps', '--limit', 'ten'),
      raiment(dir, 'ps', '--limit', '99'),
    ])
    expect(two.code, two.stderr).toBe(0)
    expect(two.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0])).toEqual(ids.slice(1))
    expect(two.stderr).toBe('the newest 2 of 3 threads; --limit N shows more\n')
    expect((JSON.parse(json.stdout) as Array<{ id: string }>).map((t) => t.id)).toEqual([ids[2]])
    expect(huge.stdout.trimEnd().split('\n')).toHaveLength(4)
    expect(huge.stderr).toBe('')
    expectError(zero, 'RAIMENT_INVALID_ARGUMENT', /--limit must be a whole number from 1 up, got '0'/)
    expectError(negative, 'RAIMENT_INVALID_ARGUMENT', /got '-1'/)
    expectError(word, 'RAIMENT_INVALID_ARGUMENT', /got 'ten'/)
  }, SLOW)
})

describe('errors', () => {
  test.concurrent('every error line starts with its code', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'notes.txt'), 'not a database\n')
    const made = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', ...T)
    expect(made.code, made.stderr).toBe(0)
    const [unknownId, badStatus, usage, unknownOption, foreign, unknownType, noDir, failed, undelivered] = await Promise.all([
      raiment(dir, 'show', 'nope/1'),
      raiment(dir, 'ps', '--status', 'sleeping'),
      raiment(dir, 'spawn'),
      raiment(dir, 'ps', '--colour'),
      raiment(dir, 'ps', '--db', 'notes.txt'),
      raiment(dir, 'spawn', 'greeet', ...T),
      raiment(dir, 'dump', made.stdout.trim(), '-o', join('no', 'such', 'dir', 'x.json')),
      raiment(dir, 'spawn', 'checkout', '{"order":7,"cents":500,"limit":100}', '--wait', '--db', 'b.db', ...T),
      raiment(dir, 'send', 'nobody', '1'),
    ])
    expectError(unknownId, 'RAIMENT_UNKNOWN_THREAD', /no thread with id 'nope\/1'/)
    expectError(badStatus, 'RAIMENT_INVALID_ARGUMENT', /--status must be one of/)
    expectError(usage, 'RAIMENT_USAGE', /missing required argument 'type' \(see --help\)$/)
    expect(usage.code).toBe(2)
    expectError(unknownOption, 'RAIMENT_USAGE', /unknown option '--colour'/)
    expectError(foreign, 'RAIMENT_NOT_A_RAIMENT_DB', /notes\.txt is not a Raiment journal/)
    expectError(unknownType, 'RAIMENT_UNKNOWN_THREAD_TYPE', /unknown thread type 'greeet'/)
    expectError(noDir, 'RAIMENT_SYSTEM_ERROR', /ENOENT: no such file or directory, open .*x\.json'; check the path \(the directory a file is written in must exist\)$/)
    // Notes that are not errors (spawned…, log lines) carry no code; the failure does.
    expect(failed.code).toBe(1)
    expect(failed.stderr.split('\n').filter((l) => l.startsWith('raiment: '))).toEqual([
      expect.stringMatching(/^raiment: RAIMENT_THREAD_FAILED: thread \S+ failed: PaymentDeclined: order 7: card declined/),
    ])
    expectError(undelivered, 'RAIMENT_NOT_DELIVERED', /not delivered to nobody/)
  }, SLOW)

  test.concurrent('a journal cut short is damaged, with what to do, not "not a Raiment journal"; and left as it is', async () => {
    const dir = tempDir()
    const journal = new Journal(join(dir, 'whole.db'), { durability: 'memory' })
    for (let i = 0; i < 5_000; i++) journal.insertThread(journal.nextThreadId(), 'greet', encodeValue({ name: `n${i}` }), null, 'pending')
    journal.flushNow()
    journal.close()
    const half = join(dir, 'half.db')
    copyFileSync(join(dir, 'whole.db'), half)
    truncateSync(half, Math.floor(statSync(half).size / 8192) * 4096)
    const before = readFileSync(half)
    const r = await raiment(dir, 'ps', '--db', 'half.db')
    expectError(r, 'RAIMENT_JOURNAL_DAMAGED', /^raiment: RAIMENT_JOURNAL_DAMAGED: half\.db is damaged \(database disk image is malformed\); .*raiment restore --from WEAVE_ID --db NEW_FILE/)
    expect(readFileSync(half).equals(before)).toBe(true)
    // Damage SQLite finds later, in a query: the same code and advice.
    const db = new Database(half, { readonly: true })
    try {
      expect(describeError(captured(() => db.prepare('SELECT count(*) FROM threads').get()))).toMatchObject({ code: 'RAIMENT_JOURNAL_DAMAGED', message: expect.stringMatching(/^the journal is damaged \(SQLITE_CORRUPT: /) })
    } finally {
      db.close()
    }
  }, SLOW)

  test.concurrent('spawn --wait stopped by SIGINT before the thread ends: its code, and not 0', async () => {
    const dir = tempDir()
    const run = raimentProcess(dir, ['spawn', 'sleeper', '{"steps":100,"ms":1000}', '--wait', '--db', 'w.db', '--durability', 'memory', ...T])
    await run.until((out) => /spawned \S+ \(no weave runs/.test(out))
    run.child.kill('SIGINT')
    const r = await run.ended
    // Before, it exited 0 with nothing printed, as if the thread had ended.
    expect(r.code, r.stderr).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^raiment: RAIMENT_WEAVE_STOPPED: the weave on w\.db stopped before \S+\/1 ended; it will run when a weave opens the journal again/m)
  }, SLOW)

  test.concurrent('an empty --db file is "empty, not a Raiment journal", and stays empty', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'empty.db'), '')
    const db = ['--db', 'empty.db']
    const runs = await Promise.all([
      raiment(dir, 'ps', ...db),
      raiment(dir, 'show', 'x/1', ...db),
      raiment(dir, 'dump', 'x/1', ...db),
      raiment(dir, 'dead-letters', ...db),
      raiment(dir, 'kill', 'x/1', ...db),
      raiment(dir, 'send', 'x/1', '{}', ...db),
      raiment(dir, 'spawn', 'greet', '{"name":"ada"}', ...db, ...T),
      raiment(dir, 'spawn', 'greet', '{"name":"ada"}', '--wait', ...db, ...T),
      raiment(dir, 'start', ...db, ...T),
    ])
    for (const r of runs) expectError(r, 'RAIMENT_EMPTY_DB', /^raiment: RAIMENT_EMPTY_DB: empty\.db is empty, not a Raiment journal; it was left untouched\./)
    expect(readdirSync(dir)).toEqual(['empty.db'])
    expect(statSync(join(dir, 'empty.db')).size).toBe(0)
  }, SLOW)
})

describe('pipes', () => {
  test.concurrent('`raiment ps | head -1` and `raiment show ID | head -1` end quietly, with status 0', async () => {
    const dir = tempDir()
    // Many threads (far more output than a pipe holds), recorded as `raiment spawn` records them.
    const journal = new Journal(join(dir, 'raiment.db'), { durability: 'memory' })
    for (let i = 0; i < 5_000; i++) journal.insertThread(journal.nextThreadId(), 'greet', encodeValue({ name: `n${i}` }), null, 'pending')
    journal.flushNow()
    journal.close()
    // And a thread of 4,500 calls.
    const long = await raiment(dir, 'spawn', 'sleeper', '{"steps":1500,"ms":0}', '--wait', '--db', 'long.db', '--durability', 'memory', ...T)
    expect(long.code, long.stderr).toBe(0)
    const id = /spawned (\S+)/.exec(long.stderr)![1]!

    const [ps, psJson, show, dump] = await Promise.all([
      bash(dir, `${RAIMENT_SH} ps | head -1`),
      bash(dir, `${RAIMENT_SH} ps --json | head -c 10`),
      bash(dir, `${RAIMENT_SH} show ${id} --db long.db | head -1`),
      bash(dir, `${RAIMENT_SH} dump ${id} --db long.db | head -1`),
    ])
    for (const r of [ps, psJson, show, dump]) {
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    }
    expect(ps.stdout).toMatch(/^ID\s+TYPE\s+STATUS\s+AGE\s+CALLS\s+PARENT\n$/)
    expect(show.stdout).toMatch(new RegExp(`^${id}  sleeper  done  created `))
    expect(dump.stdout).toBe('{\n')
  }, SLOW)
})

describe('values as JSON', () => {
  // Reproduce a failure with FC_SEED=<seed>.
  const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
  console.log(`cli-output: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)
  const params = { seed, numRuns: 200 }
  // JSON values that JSON text holds exactly (not -0), without objects that look tagged.
  const jsonExact = fc.jsonValue().filter((v) => isDeepStrictEqual(JSON.parse(JSON.stringify(v)), v) && !JSON.stringify(v).includes('"$type"'))

  fcTest.prop([jsonExact], params)('a value JSON holds exactly comes out as it went in', (v) => {
    expect(jsonValue(v)).toEqual(v)
    expect(jsonValue(decodeShown(encodeValue(v)))).toEqual(JSON.parse(JSON.stringify(v)))
  })

  fcTest.prop([fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true })], params)(
    'every recordable value becomes JSON that survives a round trip through text',
    (v) => {
      const j = jsonValue(decodeShown(encodeValue(v)))
      expect(JSON.parse(JSON.stringify(j))).toEqual(j)
    },
  )

  test('values JSON cannot hold are tagged {$type, value}', () => {
    class Money {
      constructor(readonly cents: number) {}
    }
    // Recorded by a process that registered Money; decoded by one (the CLI) that did not.
    const other = new superjson()
    other.registerClass(Money, { identifier: 'Money' })
    const recorded = 'S' + other.stringify({ price: new Money(250) })
    expect(jsonValue(decodeShown(recorded))).toEqual({ price: { $type: 'Money', value: { cents: 250 } } })

    const v = {
      at: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)),
      big: 12345678901234567890n,
      none: undefined,
      nan: NaN,
      neg: -0,
      inf: -Infinity,
      map: new Map<unknown, unknown>([[1, 'one']]),
      set: new Set(['a']),
      re: /a+/g,
      url: new URL('https://example.com/x'),
      bytes: new Uint8Array([1, 2]),
      err: new TypeError('bad'),
      looksTagged: { $type: 'Date', value: 'not a date' },
    }
    expect(jsonValue(decodeShown(encodeValue(v)))).toEqual({
      at: { $type: 'Date', value: '2026-01-02T03:04:05.006Z' },
      big: { $type: 'bigint', value: '12345678901234567890' },
      none: { $type: 'undefined' },
      nan: { $type: 'number', value: 'NaN' },
      neg: { $type: 'number', value: '-0' },
      inf: { $type: 'number', value: '-Infinity' },
      map: { $type: 'Map', value: [[1, 'one']] },
      set: { $type: 'Set', value: ['a'] },
      re: { $type: 'RegExp', value: '/a+/g' },
      url: { $type: 'URL', value: 'https://example.com/x' },
      bytes: { $type: 'Uint8Array', value: [1, 2] },
      err: { $type: 'Error', value: expect.objectContaining({ name: 'TypeError', message: 'bad' }) },
      looksTagged: { $type: 'Object', value: { $type: 'Date', value: 'not a date' } },
    })
    const holes = [1]
    holes[2] = 3
    expect(jsonValue(holes)).toEqual([1, { $type: 'undefined' }, 3])
  })
})
