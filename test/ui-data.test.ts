/**
 * What `raiment ui` reads and refuses, without a browser: keyset pages over several journals
 * hold every thread that matches exactly once, newest first (a property over random journals,
 * filters and page sizes); the server answers only requests addressed to itself and mutates only
 * with the token.
 */
import { describe, expect, it } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { encodeValue } from '../src/encoding.js'
import { Journal, type ThreadStatus } from '../src/journal.js'
import { journalSummaries, Journals, threadPage, type ThreadFilter } from '../src/ui/data.js'
import { duration, weavesPage } from '../src/ui/pages.js'
import { startUi } from '../src/ui/server.js'
import { tempDir } from './support/tmp.js'

interface Row {
  type: string
  status: ThreadStatus
  /** ms after the start; rows of a journal are written in time order, as a weave writes them. */
  at: number
}

/** Writes journals holding these threads (ids `j<i>/<n>`), closed; in time order unless `ordered` is false. */
function journals(dir: string, rows: Row[][], ordered = true): string[] {
  return rows.map((list, i) => {
    const file = join(dir, `j${i}.db`)
    const j = new Journal(file, { durability: 'memory', weaveId: `j${i}` })
    const insert = j.db.prepare('INSERT INTO threads (id, type, params, parent, status, created) VALUES (?, ?, ?, NULL, ?, ?)')
    const params = encodeValue(null)
    const sorted = ordered ? [...list].sort((a, b) => a.at - b.at) : list
    sorted.forEach((r, n) => insert.run(`j${i}/${n}`, r.type, params, r.status, 1_000_000 + r.at))
    j.close()
    return file
  })
}

const row = fc.record({
  type: fc.constantFrom('a', 'b', 'c'),
  status: fc.constantFrom<ThreadStatus>('running', 'done', 'failed'),
  at: fc.integer({ min: 0, max: 500 }),
})

describe('threadPage', () => {
  test.prop(
    [
      fc.array(fc.array(row, { maxLength: 40 }), { minLength: 1, maxLength: 3 }),
      fc.record({ status: fc.option(fc.constantFrom<ThreadStatus>('running', 'done', 'failed'), { nil: undefined }), type: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }) }),
      fc.integer({ min: 1, max: 12 }),
    ],
    { numRuns: 40 },
  )('pages hold every thread that matches once, newest first, across journals', (lists, f, limit) => {
    const dir = tempDir()
    const js = new Journals(journals(dir, lists))
    const filter: ThreadFilter = { ...(f.status ? { status: f.status } : {}), ...(f.type ? { type: f.type } : {}) }
    const seen: Array<{ id: string; created: number }> = []
    let cursor: string | undefined
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThanOrEqual(200)
      const p = threadPage(js, filter, cursor, limit)
      expect(p.rows.length).toBeLessThanOrEqual(limit)
      seen.push(...p.rows.map((r) => ({ id: r.id, created: r.created })))
      if (p.next === null) break
      cursor = p.next
    }
    const want = lists.flatMap((list, i) =>
      [...list]
        .sort((a, b) => a.at - b.at)
        .map((r, n) => ({ id: `j${i}/${n}`, ...r }))
        .filter((r) => (!filter.status || r.status === filter.status) && (!filter.type || r.type === filter.type)),
    )
    expect(seen.map((s) => s.id).sort()).toEqual(want.map((w) => w.id).sort())
    for (let k = 1; k < seen.length; k++) expect(seen[k]!.created).toBeLessThanOrEqual(seen[k - 1]!.created)
  })

  test.prop([fc.array(fc.array(row, { maxLength: 40 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 12 })], { numRuns: 40 })(
    'pages hold every thread once when rows were not written in time order (a thread that moved in keeps its time)',
    (lists, limit) => {
      const dir = tempDir()
      const js = new Journals(journals(dir, lists, false))
      const seen: string[] = []
      let cursor: string | undefined
      for (let pages = 0; ; pages++) {
        expect(pages).toBeLessThanOrEqual(200)
        const p = threadPage(js, {}, cursor, limit)
        seen.push(...p.rows.map((r) => r.id))
        if (p.next === null) break
        cursor = p.next
      }
      // Before, a page sorted by time took a later row ahead of an earlier one: 163 rows seen of 123 threads.
      expect(seen.sort()).toEqual(lists.flatMap((list, i) => list.map((_, n) => `j${i}/${n}`)).sort())
    },
  )
})

describe('Journals', () => {
  it('finds a thread on the journal it runs on, not the one it moved away from', () => {
    const dir = tempDir()
    const files = ['moved', 'running'].map((status, i) => {
      const file = join(dir, `m${i}.db`)
      const j = new Journal(file, { durability: 'memory', weaveId: `m${i}` })
      j.db.prepare('INSERT INTO threads (id, type, params, parent, status, created) VALUES (?, ?, ?, NULL, ?, ?)').run('m0/1', 'a', encodeValue(null), status, 1)
      j.close()
      return file
    })
    expect(new Journals(files).find('m0/1')).toBe(1)
    expect(new Journals([files[0]!]).find('m0/1')).toBe(0)
    expect(new Journals(files).find('m0/2')).toBe(-1)
  })

  it('reads a signature of its files whatever happened to their paths (the server reads it every 250 ms)', () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'sub'))
    const js = new Journals(journals(join(dir, 'sub'), [[]]))
    const before = js.signature()
    // A directory on the path moved away and a file put in its place: stat says ENOTDIR.
    renameSync(join(dir, 'sub'), join(dir, 'sub2'))
    writeFileSync(join(dir, 'sub'), 'x')
    expect(js.signature()).not.toBe(before)
  })
})

describe('duration', () => {
  it('rounds within the unit it shows: never 60 of a unit', () => {
    const cases: Array<[number, string]> = [
      [0.5, '0.50 ms'],
      [9.97, '10 ms'],
      [999.7, '1.00 s'],
      [9_996, '10.0 s'],
      [59_960, '1 min 0 s'],
      [119_600, '2 min 0 s'],
      [754_000, '12 min 34 s'],
      [3_599_600, '1 h 0 min'],
      [7_170_000, '2 h 0 min'],
      [7_530_000, '2 h 6 min'],
    ]
    for (const [ms, text] of cases) expect(duration(ms), String(ms)).toBe(text)
  })
})

describe('the Weaves page', () => {
  it("says a live weave's heartbeat counts its threads in memory, and adds its passivated ones", () => {
    const dir = tempDir()
    const file = join(dir, 'p.db')
    const j = new Journal(file, { durability: 'memory', weaveId: 'pw' })
    for (const id of ['pw/1', 'pw/2']) j.insertThread(id, 'a', encodeValue(null), null, 'running')
    j.flushNow()
    // Both out of memory, waiting for a message (as a weave passivates them).
    const passivate = j.db.prepare('INSERT INTO passivated (thread, due, mailbox, joins, at) VALUES (?, NULL, 1, NULL, ?)')
    for (const id of ['pw/1', 'pw/2']) passivate.run(id, Date.now())
    j.close()
    const summaries = journalSummaries(new Journals([file]))
    expect(summaries[0]).toMatchObject({ weave: 'pw', statuses: { running: 2 }, passivated: 2 })
    const now = Date.now()
    const html = String(weavesPage(summaries, [{ id: 'pw', host: 'h', pid: 7, threads: 0, names: {}, at: now, intervalMs: 1000, seen: now }], null, now))
    expect(html).toContain('<th class="num">Threads in memory</th>')
    expect(html).toContain('<td class="num">0 <span class="note">+ 2 passivated</span></td>')
    expect(html).toContain('<span class="note">(2 of them passivated)</span>')
    // A heartbeat that counts them says it, with no journal shown here.
    const beat = String(weavesPage([], [{ id: 'qw', host: 'h', pid: 8, threads: 1, passivated: 5, names: {}, at: now, intervalMs: 1000, seen: now }], null, now))
    expect(beat).toContain('<td class="num">1 <span class="note">+ 5 passivated</span></td>')
  })
})

describe('the UI server', () => {
  it('a port in use is its own error, saying what to do', async () => {
    const dir = tempDir()
    const [file] = journals(dir, [[{ type: 'a', status: 'running', at: 1 }]])
    const ui = await startUi({ journals: new Journals([file!]), port: 0, token: 'secret' })
    try {
      await expect(startUi({ journals: new Journals([file!]), port: ui.port, token: 'secret' })).rejects.toMatchObject({
        code: 'RAIMENT_PORT_IN_USE',
        message: `port ${ui.port} on 127.0.0.1 is in use; pass another --port, or leave --port out to take a free one`,
      })
    } finally {
      await ui.close()
    }
  })

  it('says when the threads whose id starts with what was typed are more than a page', async () => {
    const dir = tempDir()
    const files = journals(dir, [Array.from({ length: 30 }, (_, n) => ({ type: 'a', status: 'done' as const, at: n })), Array.from({ length: 30 }, (_, n) => ({ type: 'a', status: 'done' as const, at: n }))])
    const ui = await startUi({ journals: new Journals(files), port: 0, token: 'secret' })
    try {
      const page = async (id: string) => (await fetch(new URL(`/?id=${encodeURIComponent(id)}`, ui.url))).text()
      const all = await page('j')
      expect(all.match(/data-id=/g)).toHaveLength(50)
      expect(all).toContain('threads whose id starts with this, in id order; the first 50 only: type more of the id')
      const some = await page('j1/')
      expect(some.match(/data-id=/g)).toHaveLength(30)
      expect(some).toContain('threads whose id starts with this, in id order</span>')
    } finally {
      await ui.close()
    }
  })

  it('answers only requests addressed to it, mutates only with the token, and creates no file', async () => {
    const dir = tempDir()
    const [file] = journals(dir, [[{ type: 'a', status: 'running', at: 1 }]])
    const before = readdirSync(dir).sort()
    const ui = await startUi({ journals: new Journals([file!]), port: 0, token: 'secret' })
    try {
      const get = (path: string, headers: Record<string, string> = {}) => fetch(new URL(path, ui.url), { headers })
      expect((await get('/')).status).toBe(200)
      // A page of another site whose name resolves to 127.0.0.1 sends its own Host (fetch cannot).
      const foreign = await new Promise<number>((resolve, reject) => {
        request(ui.url, { headers: { host: 'evil.example' } }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
          .on('error', reject)
          .end()
      })
      expect(foreign).toBe(403)
      const dump = await get('/dump?id=j0%2F0')
      expect(dump.headers.get('content-disposition')).toBe('attachment; filename="j0-0.json"')
      expect(await dump.text()).toContain('"id": "j0/0"')
      const kill = (token?: string) =>
        fetch(new URL('/api/kill', ui.url), { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { 'x-raiment-token': token } : {}) }, body: JSON.stringify({ id: 'j0/0' }) })
      for (const bad of [undefined, 'wrong', 'secre']) {
        const r = await kill(bad)
        expect(r.status).toBe(403)
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('RAIMENT_UI_TOKEN')
      }
      expect(readdirSync(dir).sort()).toEqual(before)
      // A body that is JSON but not an object: a usage error, not an internal one.
      for (const body of ['null', '[1]', '"j0/0"', 'not json']) {
        const r = await fetch(new URL('/api/kill', ui.url), { method: 'POST', headers: { 'content-type': 'application/json', 'x-raiment-token': 'secret' }, body })
        expect(r.status, body).toBe(400)
        expect(((await r.json()) as { error: { code: string } }).error.code, body).toBe('RAIMENT_USAGE')
      }
      const threads = await (await get('/?status=running')).text()
      expect(threads).toContain('data-id="j0/0"')
      // With the token: no weave runs, so the kill is written into the journal, as raiment kill does.
      const r = await kill('secret')
      expect(await r.json()).toEqual({ killed: true })
      expect(await (await get('/?status=killed')).text()).toContain('data-id="j0/0"')
    } finally {
      await ui.close()
    }
  })
})
