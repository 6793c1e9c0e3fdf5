// `npm run bench -- --only ui`: how fast `raiment ui` answers over a large journal. It builds a
// journal of 1,000,000 threads (20 types, one of them rare; 1% failed, 0.1% running; a tenth of
// them children; 1,000 registered names) and one thread of 100,000 journaled calls, then times
// HTTP requests to a real UI server (in this process) on it: the median of `runs` requests each
// (at least 5), after 3 that warm it up.
import { rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { Journals } from '../src/ui/data.js'
import { startUi } from '../src/ui/server.js'
import { fmt, summarize, verdict } from './common.js'

const THREADS = 1_000_000
const ENTRIES = 100_000
const TARGET = { atMost: 200, text: 'a page of the UI in < 200 ms over a journal of 1,000,000 threads' }

/** Writes the journal: rows straight into its tables, in big transactions. */
function build(file: string): { big: string; parent: string } {
  const j = new Journal(file, { durability: 'memory', weaveId: 'bench' })
  const db = j.db
  const insert = db.prepare('INSERT INTO threads (id, type, params, parent, status, outcome, created, ended, calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
  const params = encodeValue({ order: 1, cents: 500 })
  const result = encodeValue({ ok: true })
  const failure = encodeValue({ name: 'Error', message: 'declined', fields: {} })
  const t0 = Date.now() - THREADS * 10
  const BATCH = 50_000
  for (let from = 1; from <= THREADS; from += BATCH) {
    db.transaction(() => {
      for (let n = from; n < from + BATCH && n <= THREADS; n++) {
        const type = n % 10_000 === 7 ? 'rare' : `type-${n % 19}`
        const status = n % 1_000 === 3 ? 'running' : n % 100 === 5 ? 'failed' : 'done'
        const parent = n % 10 === 0 ? `bench/${n - 1}` : null
        const created = t0 + n * 10
        insert.run(`bench/${n}`, type, params, parent, status, status === 'done' ? result : status === 'failed' ? failure : null, created, status === 'running' ? null : created + 5, 6)
      }
    })()
  }
  const name = db.prepare('INSERT INTO names (name, thread) VALUES (?, ?)')
  db.transaction(() => {
    for (let k = 0; k < 1_000; k++) name.run(`name-${k}`, `bench/${3 + k * 1_000}`)
  })()
  const big = 'bench/3'
  const entry = db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, 1, ?, ?, 0.05)')
  const now = encodeValue(1_800_000_000_000)
  db.transaction(() => {
    for (let s = 0; s < ENTRIES; s++) entry.run(big, s, s % 50 === 0 ? `mailbox.send:${encodeArgs(['bench/4', { ping: s }])}` : `clock.now:${encodeArgs([])}`, s, now, t0 + s)
  })()
  j.close()
  return { big, parent: 'bench/9' }
}

export async function uiBench(runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  log('')
  log(`## raiment ui: HTTP requests over a journal of ${fmt(THREADS)} threads (one of ${fmt(ENTRIES)} calls)`)
  const file = join(tmpdir(), `raiment-bench-ui-${process.pid}.db`)
  try {
    progress(`  load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (${cpus().length} cores)`)
    const started = Date.now()
    const { big, parent } = build(file)
    progress(`  built the journal in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    const ui = await startUi({ journals: new Journals([file]), port: 0 })
    try {
      // Wall time, and the CPU time of this process (server and client): on a machine other work
      // also loads, the CPU time says what a request costs, the wall time what it waited besides.
      const time = async (path: string): Promise<{ ms: number; cpu: number }> => {
        const t = performance.now()
        const c = process.cpuUsage()
        const res = await fetch(new URL(path, ui.url))
        const body = await res.text()
        const ms = performance.now() - t
        const used = process.cpuUsage(c)
        if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${body.slice(0, 300)}`)
        return { ms, cpu: (used.user + used.system) / 1000 }
      }
      // The cursor of a page half-way down the table, as its "older" link gives it.
      const deep = Buffer.from(JSON.stringify([THREADS / 2])).toString('base64url')
      const pages: Array<[string, string]> = [
        ['threads, newest page', '/'],
        ['threads, a page half-way down (keyset)', `/?after=${deep}`],
        ['threads, status failed', '/?status=failed'],
        ['threads, status running, half-way down', `/?status=running&after=${deep}`],
        ['threads, the rare type', '/?type=rare'],
        ['threads, the rare type and failed', '/?type=rare&status=failed'],
        ['threads, a common type and running', '/?type=type-3&status=running'],
        ['threads, by name prefix', '/?name=name-99'],
        ['threads, by id prefix', '/?id=bench/12345'],
        [`a thread with ${fmt(ENTRIES)} calls, first page`, `/thread?id=${encodeURIComponent(big)}`],
        [`a thread with ${fmt(ENTRIES)} calls, page at call 50,000`, `/thread?id=${encodeURIComponent(big)}&from=50000`],
        ['a thread with children', `/thread?id=${encodeURIComponent(parent)}`],
        ['weaves (counts by status)', '/weaves'],
      ]
      let worst = 0
      for (const [label, path] of pages) {
        // The first requests of a path run code the JIT has not compiled yet.
        for (let w = 0; w < 3; w++) await time(path)
        const ms: number[] = []
        const cpu: number[] = []
        for (let r = 0; r < Math.max(runs, 5); r++) {
          const t = await time(path)
          ms.push(t.ms)
          cpu.push(t.cpu)
        }
        const s = summarize(ms)
        if (!path.startsWith('/weaves')) worst = Math.max(worst, s.median)
        log(`${label}: median ${s.median.toFixed(1)} ms (min-max ${s.min.toFixed(1)}-${s.max.toFixed(1)}), CPU ${summarize(cpu).median.toFixed(1)} ms`)
      }
      log(`slowest page (weaves aside): ${worst.toFixed(1)} ms ${verdict(worst, TARGET, 'raiment ui, slowest page')}`)
    } finally {
      await ui.close()
    }
  } finally {
    for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-lock`]) rmSync(f, { force: true })
  }
}
