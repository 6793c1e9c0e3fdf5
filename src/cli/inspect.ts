/**
 * The read-only commands: `ps`, `show`, `dump`. They open the journal read-only, so they can run
 * beside a live weave and never create or change a file.
 */
import { writeFileSync } from 'node:fs'
import { dumpText, makeDump } from '../dump.js'
import { InvalidArgument } from '../errors.js'
import type { ThreadRow, ThreadStatus } from '../journal.js'
import { age, errorText, note, openReadonly, say, short, table, type DbOptions } from './common.js'

const STATUSES: readonly ThreadStatus[] = ['pending', 'running', 'done', 'failed', 'killed', 'moved']

export interface PsOptions extends DbOptions {
  status?: string
  type?: string
  tree?: boolean
}

/** `raiment ps`: one row per thread. */
export function ps(o: PsOptions): number {
  const status = o.status === undefined ? undefined : parseStatuses(o.status)
  const journal = openReadonly(o.db)
  try {
    const rows = journal.threads({ ...(status ? { status } : {}), ...(o.type ? { type: o.type } : {}) })
    if (rows.length === 0) {
      say(o.status || o.type ? 'no threads match' : `no threads in ${o.db}`)
      return 0
    }
    const live = rows.some((r) => r.status === 'running' || r.status === 'pending') ? journal.callCounts() : new Map<string, number>()
    const calls = (r: ThreadRow): string => String(r.status === 'running' || r.status === 'pending' ? (live.get(r.id) ?? 0) : r.calls)
    const now = Date.now()
    const ordered = o.tree ? treeOrder(rows) : rows.map((row) => ({ row, depth: 0 }))
    const header = ['ID', 'TYPE', 'STATUS', 'AGE', 'CALLS', ...(o.tree ? [] : ['PARENT'])]
    const lines = table(
      header,
      ordered.map(({ row, depth }) => [
        '  '.repeat(depth) + row.id,
        row.type,
        row.status,
        age(row.created, now),
        calls(row),
        ...(o.tree ? [] : [row.parent ?? '-']),
      ]),
    )
    for (const l of lines) say(l)
    return 0
  } finally {
    journal.close()
  }
}

function parseStatuses(text: string): ThreadStatus[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean)
  for (const s of list) {
    if (!STATUSES.includes(s as ThreadStatus)) {
      throw new InvalidArgument(`--status must be one of ${STATUSES.join(', ')} (or several, comma-separated), got '${s}'`)
    }
  }
  return list as ThreadStatus[]
}

/** Children right under their parent, indented one step per generation. */
function treeOrder(rows: ThreadRow[]): Array<{ row: ThreadRow; depth: number }> {
  const ids = new Set(rows.map((r) => r.id))
  const children = new Map<string, ThreadRow[]>()
  const roots: ThreadRow[] = []
  for (const r of rows) {
    if (r.parent !== null && ids.has(r.parent)) {
      const list = children.get(r.parent) ?? []
      list.push(r)
      children.set(r.parent, list)
    } else roots.push(r)
  }
  const out: Array<{ row: ThreadRow; depth: number }> = []
  const visit = (r: ThreadRow, depth: number): void => {
    out.push({ row: r, depth })
    for (const c of children.get(r.id) ?? []) visit(c, depth + 1)
  }
  for (const r of roots) visit(r, 0)
  return out
}

/** `raiment show ID`: the thread's journal as a timeline. */
export function show(id: string, o: DbOptions): number {
  const journal = openReadonly(o.db)
  try {
    const d = makeDump(journal, id)
    const t = d.thread
    say(`${t.id}  ${t.type}  ${t.status}  params ${short(t.params, 60)}  created ${new Date(t.created).toISOString()}`)
    if (d.entries.length === 0) say('(no calls recorded)')
    else {
      const lines = table(
        ['SEQ', 'CALL', 'ARGS', 'OUTCOME', 'MS', 'OK'],
        d.entries.map((e) => [
          String(e.seq),
          e.call,
          short(e.args.length === 1 ? e.args[0] : e.args, 36),
          short(e.ok ? e.value : errorText(e.error ?? {}), 36),
          e.duration.toFixed(1),
          e.ok ? 'ok' : 'err',
        ]),
      )
      for (const l of lines) say(l)
    }
    if (t.status === 'done') say(`result ${short(t.result, 200)}`)
    else if (t.status === 'failed') say(`error ${short(errorText(t.error ?? {}), 200)}`)
    return 0
  } finally {
    journal.close()
  }
}

/** `raiment dump ID [-o FILE]`. */
export interface DumpOptions extends DbOptions {
  output?: string
}

export function dump(id: string, o: DumpOptions): number {
  const journal = openReadonly(o.db)
  let text: string
  try {
    text = dumpText(makeDump(journal, id))
  } finally {
    journal.close()
  }
  if (o.output === undefined || o.output === '-') {
    process.stdout.write(text)
  } else {
    writeFileSync(o.output, text)
    note(`wrote the dump of ${id} to ${o.output}`)
  }
  return 0
}
