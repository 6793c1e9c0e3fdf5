/**
 * A journal stream written before the binary record format (JSON bodies) still rebuilds, and its
 * live threads run on from the rebuilt file.
 *
 * test/fixtures/json-journal-stream.json holds such a stream as a weave of that version wrote it
 * (two runs of weave 'j' with the threads below: a head naming generations 1 and 2, and
 * generation 2's snapshot and batches), with the state of the journal it came from. Kept as it
 * is, forever: the test publishes it to a fresh namespace and rebuilds it.
 */
import amqp from 'amqplib'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { genStream, headStream, type RecordHeaders } from '../src/replication/records.js'
import { declareStream } from '../src/replication/streams.js'
import { AMQP_URL, brokerUp, CI, freshNamespace } from './support/broker.js'
import { dropStreams, journalState } from './support/replication.js'
import { tempDir } from './support/tmp.js'

interface Fixture {
  weaveId: string
  generation: number
  head: Array<{ headers: RecordHeaders; body: string }>
  records: Array<{ headers: RecordHeaders; body: string }>
  state: Record<string, unknown>
  /** A thread of it that waits in a receive. */
  waiting: string
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/json-journal-stream.json', import.meta.url), 'utf8')) as Fixture

const short = thread({
  uses: ['clock'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.clock.now()
    return { n: p.n, text: 'é✓ "quoted" \\ \n' }
  },
})

const waiting = thread({
  uses: ['clock', 'mailbox'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.clock.now()
    return await this.mailbox.receive()
  },
})

/**
 * A rebuilt journal's state with the columns the fixture's schema had: columns added since
 * (appended to their tables by later migrations) must be empty in a journal from an older stream
 * (null, or the 0 a NOT NULL column, such as threads.continued, defaults to).
 */
function asRecorded(state: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [table, rows] of Object.entries(state)) {
    const recorded = fixture.state[table] as unknown[][] | undefined
    const width = recorded?.[0]?.length
    if (!Array.isArray(rows) || width === undefined) {
      out[table] = rows
      continue
    }
    out[table] = (rows as unknown[][]).map((row) => {
      expect(row.slice(width).every((v) => v === null || v === 0), `${table}: a column added since holds a value`).toBe(true)
      return row.slice(0, width)
    })
  }
  return out
}

/** Publishes the fixture's head and `records` as the streams of weave `j` in `ns`. */
async function publish(ns: string, records: Fixture['records']): Promise<void> {
  const id = fixture.weaveId
  const conn = await amqp.connect(AMQP_URL)
  try {
    const head = headStream(ns, id)
    const gen = genStream(ns, id, fixture.generation)
    await declareStream(conn, head)
    await declareStream(conn, gen)
    const ch = await conn.createConfirmChannel()
    for (const r of fixture.head) ch.publish('', head, Buffer.from(r.body), { headers: r.headers })
    for (const r of records) ch.publish('', gen, Buffer.from(r.body), { headers: r.headers })
    await ch.waitForConfirms()
    await ch.close()
  } finally {
    await conn.close()
  }
}

describe.skipIf(!brokerUp && !CI)('a journal stream of JSON records (the format before the binary one)', () => {
  const namespaces: string[] = []
  afterAll(async () => {
    for (const ns of namespaces) await dropStreams(ns, fixture.weaveId).catch(() => {})
  })

  it('rebuilds into the journal it was written from, whose live threads run on', async () => {
    const ns = freshNamespace()
    namespaces.push(ns)
    const id = fixture.weaveId
    expect(fixture.records.every((r) => r.headers.kind === 'generation' || r.body.startsWith('['))).toBe(true)
    await publish(ns, fixture.records)
    const dir = tempDir()
    const file = join(dir, 'restored.db')
    const r = await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: id, file })
    expect(r.generation).toBe(fixture.generation)
    expect(asRecorded(journalState(file, false))).toEqual(fixture.state)
    const weave = await Weave.open({ db: file, weaveId: id, threads: { short, waiting }, ioLibs: false, dumps: false })
    try {
      weave.send(fixture.waiting, { after: 'restore' })
      expect(await weave.join(fixture.waiting)).toMatchObject({ status: 'done', result: { after: 'restore' } })
    } finally {
      await weave.close()
    }
  })

  it('refuses a record it cannot read, writing nothing', async () => {
    const ns = freshNamespace()
    namespaces.push(ns)
    const records = fixture.records.map((r, i) => (i === 3 ? { ...r, body: '\u0009 from a newer version' } : r))
    await publish(ns, records)
    const file = join(tempDir(), 'restored.db')
    await expect(rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: fixture.weaveId, file })).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_STREAM_INVALID' })
    expect(existsSync(file)).toBe(false)
  })
})
