/**
 * `raiment demo` (what `npm start` runs): a weave on ./raiment.db running the example threads.
 *
 * The ids of the current batch live in meta 'demo_batch', written in the same commit as the
 * batch's spawn records, so after a SIGKILL the next run knows which threads are the demo's: if
 * any is unfinished, the weave has just resumed it and no new batch is spawned. Every result is
 * a function of the params alone, so a resumed run prints the same results as an uninterrupted
 * one.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { dumpText, makeDump } from '../dump.js'
import { decodeValue } from '../encoding.js'
import { errorFromRecord, type ErrorRecord } from '../error-records.js'
import { InvalidArgument } from '../errors.js'
import type { ThreadRow } from '../journal.js'
import { loadThreadTypes } from '../thread-types.js'
import type { Weave } from '../weave.js'
import { DEFAULT_THREADS, displayPath, errorLine, errorText, note, plural, say, short, table, toText } from './common.js'
import { endLine, openWeave, runUntilSignal, type StartOptions } from './weave-commands.js'

const BATCH_KEY = 'demo_batch'

/** The application database the order sagas write; each new batch starts with a fresh one. */
const SHOP_DB = 'demo-data/shop.db'
const SHOP = { db: SHOP_DB, open: { stock: { lamp: 10, desk: 3 }, funds: { ada: 10_000, grace: 50_000 } } }

/** The demo's threads: ~6 s in all, long enough to SIGKILL it half-way. */
export const DEMO_BATCH: ReadonlyArray<{ type: string; params: unknown }> = [
  { type: 'greet', params: { name: 'ada' } },
  { type: 'inventory', params: { dir: 'demo-data', items: { bolts: 120, nuts: 80, washers: 45 } } },
  { type: 'sleeper', params: { steps: 6, ms: 1_000 } },
  { type: 'checkout', params: { order: 42, cents: 12_500, limit: 10_000 } },
  { type: 'ping-pong', params: { rounds: 20 } },
  { type: 'worker-pool', params: { jobs: 12, workers: 3, failEvery: 4, jobMs: 250 } },
  { type: 'order-saga', params: { ...SHOP, order: 'A-100', customer: 'ada', item: 'lamp', qty: 2, cents: 4_000 } },
  { type: 'order-saga', params: { ...SHOP, order: 'A-101', customer: 'grace', item: 'desk', qty: 1, cents: 25_000, failAt: 'ship' } },
]

export async function demo(o: StartOptions): Promise<number> {
  const began = Date.now()
  const { types } = await loadThreadTypes(o.threads)
  const missing = [...new Set(DEMO_BATCH.map((t) => t.type))].filter((t) => !types.has(t))
  if (missing.length > 0) {
    throw new InvalidArgument(
      `the demo runs the example thread types of the raiment repository, and ${o.threads} lacks ${missing.join(', ')}; ` +
        `run it in a clone of the repository (npm start), or pass --threads DIR`,
    )
  }
  const weave = await openWeave(o)
  dieWithLauncher()
  weave.on('error', (e) => note(errorLine(e)))
  const journal = weave.journal
  let ids = batchIds(weave)
  const unfinished = ids.filter((id) => {
    const s = journal.thread(id)?.status
    return s === 'running' || s === 'pending'
  })
  const mine = (id: string): boolean => ids.includes(id)
  weave.on('thread-start', ({ id, type }) => {
    if (mine(id)) say(`started ${id} ${type}`)
  })
  weave.on('thread-end', (end) => {
    if (mine(end.id)) say(endLine(weave, end))
  })
  say(`weave ${journal.weaveId} on ${o.db}: ${plural(weave.types.length, 'thread type')}`)
  if (unfinished.length > 0) {
    say(`resumed ${plural(unfinished.length, 'thread')} of the demo begun earlier (${ids.length - unfinished.length} had already ended)`)
    for (const u of unfinished) say(`resumed ${u} ${journal.thread(u)?.type ?? ''}`)
  } else {
    // The sagas' shop starts each batch afresh (no thread of this weave has opened it yet).
    for (const suffix of ['', '-wal', '-shm']) rmSync(SHOP_DB + suffix, { force: true })
    mkdirSync(dirname(SHOP_DB), { recursive: true })
    ids = DEMO_BATCH.map((t) => weave.spawn(t.type, t.params))
    // Same commit as the spawn records: a crash leaves both or neither.
    journal.queue(journal.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v'), [
      BATCH_KEY,
      JSON.stringify(ids),
    ])
    const kinds = [...new Set(DEMO_BATCH.map((t) => t.type))]
    say(`spawned ${plural(ids.length, 'thread')} of ${plural(kinds.length, 'type')}: ${kinds.join(', ')} (their log lines go to stderr)`)
  }
  return runUntilSignal(weave, async () => {
    await Promise.all(ids.map((i) => weave.join(i)))
    await weave.committed()
    const rows = ids.map((i) => journal.thread(i)!)
    say('')
    say(`all ${rows.length} demo threads ended (${((Date.now() - began) / 1000).toFixed(1)} s in this run). Results:`)
    for (const l of table(['ID', 'TYPE', 'STATUS', 'RESULT'], rows.map(resultRow))) say(l)
    for (const r of rows.filter((x) => x.status === 'failed')) {
      const file = ensureDump(weave, r.id)
      if (file === null) continue
      const threads = o.threads === DEFAULT_THREADS ? '' : ` --threads ${o.threads}`
      say('')
      say(`${r.id} failed on purpose and left a dump: ${file}`)
      say(`reproduce the failure from the dump alone: npx raiment replay ${file}${threads}`)
    }
    say(`inspect a thread: npx raiment show ${ids[0]}`)
    say('list the threads, children under their parents: npx raiment ps --tree')
    return 0
  })
}

/**
 * The demo is interactive, so it dies with the command that launched it. Killing `npm start`
 * with SIGKILL kills npm alone and leaves its `sh -c` and this process running; the demo then
 * dies the same way (SIGKILL), so that running the command again resumes the threads instead
 * of finding a weave still at work on the journal. It watches its parent and, on Linux, its
 * grandparent.
 */
function dieWithLauncher(): void {
  const watched = launchers()
  if (watched.length === 0) return
  setInterval(() => {
    if (!watched.every(alive)) process.kill(process.pid, 'SIGKILL')
  }, 100).unref()
}

function launchers(): number[] {
  const out = process.ppid > 1 ? [process.ppid] : []
  try {
    const stat = readFileSync(`/proc/${process.ppid}/stat`, 'utf8')
    const grandparent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (grandparent > 1) out.push(grandparent)
  } catch {
    // Not Linux: the parent alone.
  }
  return out
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function batchIds(weave: Weave): string[] {
  const text = weave.journal.meta(BATCH_KEY)
  if (text === undefined) return []
  try {
    const ids = JSON.parse(text) as unknown
    return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : []
  } catch {
    return []
  }
}

function resultRow(r: ThreadRow): string[] {
  let result: string
  if (r.status === 'done') result = toText(decodeValue(r.outcome ?? 'U'))
  else if (r.status === 'failed') result = errorText(errorFromRecord(decodeValue(r.outcome ?? 'U') as ErrorRecord))
  else result = '-'
  return [r.id, r.type, r.status, short(result, 160)]
}

/**
 * The failed thread's dump, written now if the weave that failed it died before writing it.
 * Returns its path as a user would type it, or null when dumps are off.
 */
function ensureDump(weave: Weave, id: string): string | null {
  const file = weave.dumpPath(id)
  if (file === null) return null
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, dumpText(makeDump(weave.journal, id)))
  }
  return displayPath(file)
}
