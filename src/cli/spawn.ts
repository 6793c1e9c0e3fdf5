/**
 * `raiment spawn`: a thread recorded for the weave running on the journal (asked through the
 * journal's control table), recorded 'pending' for the next weave, or run here (`--wait` with no
 * weave running).
 */
import { existsSync } from 'node:fs'
import { stopPoint } from '../crash-points.js'
import { encodeValue } from '../encoding.js'
import { decodeError } from '../error-records.js'
import { JournalOwned, RaimentError, UnknownThread } from '../errors.js'
import { Journal, type ThreadRow } from '../journal.js'
import { callCountOf } from '../journal-queries.js'
import { rowEnd, type ThreadEnd, type Weave } from '../weave.js'
import { newScope } from '../call-context.js'
import { checkChosenId, chosenId, SpawnIds } from '../spawn-ids.js'
import { allLibraryFiles } from '../libraries.js'
import { checkUses } from '../thread-types.js'
import type { AnyThreadType } from '../thread.js'
import { complain, displayPath, errorLine, errorText, movedTo, note, parseParams, refuseEmpty, refuseReplicatedOffline, runningOwner, say, threadType, toText, undoFreshJournal, withOwner, type Owner } from './common.js'
import { askTimeout, askWeave, busyHint, waitText, type AskOptions } from './ask-weave.js'
import { threadJson, threadView } from './records.js'
import { openWeave, runUntilSignal, stopWaitOf, type StartOptions } from './weave-commands.js'

export interface SpawnOptions extends StartOptions, AskOptions {
  wait?: boolean
  json?: boolean
  /** Spawn once per key: the thread's id is `<weaveId>/<key>` (src/spawn-ids.ts). */
  key?: string
}

/**
 * `raiment spawn TYPE [PARAMS_JSON]`. With a weave running on the journal, that weave is asked
 * to spawn it (so a type it does not know is refused, with nothing recorded); with none, the
 * type is checked against --threads and the thread is recorded 'pending' for the next weave
 * (or, with --wait, run by a weave in this process; one that starts before that weave opens the
 * journal is asked instead). With `--key`, once per key, as
 * `Weave.spawn(type, params, { id: key })`: a spawn of a key spawned already prints its thread.
 */
export async function spawn(type: string, paramsText: string | undefined, o: SpawnOptions): Promise<number> {
  // No journal yet, so no weave runs on it: check the type before the file is made.
  if (o.key !== undefined) checkChosenId(o.key)
  askTimeout(o)
  const checked = existsSync(o.db) ? null : await runnableType(o, type)
  const params = parseParams(paramsText, type)
  const text = encodeValue(params, 'params')
  refuseEmpty(o.db)
  // Refused before the thread is recorded (as a start is): the journal made here goes again.
  const undo = undoFreshJournal(o.db)
  let weave: Weave
  try {
    const journal = new Journal(o.db, { durability: o.durability, own: false })
    try {
      const owner = runningOwner(journal)
      if (owner === null) refuseReplicatedOffline(journal)
      if (owner === null && checked === null) await runnableType(o, type)
      if (owner !== null || !o.wait) {
        // With none running: the check for a weave and the pending row in one step that no weave
        // opening now can split (a weave that read its pending threads, or took its stream's first
        // snapshot, before the row would not run it, or not replicate it).
        let made: string | null = null
        const running =
          owner ??
          withOwner(journal, (now) => {
            if (now !== null) return now
            if (o.key !== undefined) {
              made = chosenId(journal.weaveId, o.key)
              // Spawned already (the same type and params): that thread; else SpawnIdTaken.
              if (new SpawnIds(journal).claim(made, type, text, undefined)) return null
            } else made = journal.nextThreadId(1)
            journal.db.prepare("INSERT INTO threads (id, type, params, parent, status, created, scope) VALUES (?, ?, ?, NULL, 'pending', ?, ?)").run(made, type, text, Date.now(), newScope())
            return null
          })
        if (running !== null) return await inRunningWeave(journal, running, type, text, o)
        const id = made!
        if (!o.wait) {
          printSpawned(journal, id, o.json)
          note(`no weave runs on ${o.db}; ${id} starts when one does (raiment start --db ${o.db})`)
          return 0
        }
      }
    } finally {
      journal.close()
    }
    // --wait and no weave running: run one here until the thread ends.
    stopPoint('spawn-checked')
    try {
      weave = await openWeave(o)
    } catch (e) {
      // A weave started between the check above and this open, and owns the journal now: it is
      // asked to spawn the thread, as when it ran before (once: it owns the journal until it stops).
      if (!(e instanceof JournalOwned)) throw e
      const again = new Journal(o.db, { durability: o.durability, own: false })
      try {
        const owner = runningOwner(again)
        if (owner === null) throw e
        return await inRunningWeave(again, owner, type, text, o)
      } finally {
        again.close()
      }
    }
  } catch (e) {
    undo()
    throw e
  }
  weave.on('error', (e) => note(errorLine(e)))
  let id = ''
  let printing: Promise<number> | null = null
  // Stopped by a signal before the thread ended: no result to print, so not 0. (After: it is printed.)
  const stopped = (): number | Promise<number> => {
    if (printing !== null) return printing
    note(errorLine(weaveStopped(o.db, id)))
    return 1
  }
  return runUntilSignal(
    weave,
    async () => {
      id = weave.spawn(type, params, o.key !== undefined ? { id: o.key } : {})
      note(`spawned ${id} (no weave runs on ${o.db}, so this process runs it)`)
      const end = await weave.join(id)
      printing = weave.committed().then(() => printEnd(end, end.status === 'failed' ? weave.dumpPath(id, end.error) : null, weave.journal, o.json))
      return printing
    },
    { stopped, ...stopWaitOf(o) },
  )
}

/** The spawn asked of the weave running on the journal; with --wait, its end printed once it ends there. */
async function inRunningWeave(journal: Journal, owner: Owner, type: string, text: string, o: SpawnOptions): Promise<number> {
  const id = await spawnInWeave(journal, owner, type, text, o.key, askTimeout(o))
  if (!o.wait) {
    printSpawned(journal, id, o.json)
    return 0
  }
  note(`spawned ${id} on the weave running on ${o.db} (pid ${owner.pid})`)
  return printEnd(await waitInJournal(journal, id), null, journal, o.json)
}

/** A spawned thread's id, or with `json` its record as ps --json prints it. */
function printSpawned(journal: Journal, id: string, json = false): void {
  if (!json) return say(id)
  // As ps --json counts them: the weave may have run it, or a key named one that ran, already.
  const row = journal.thread(id)!
  say(JSON.stringify(threadJson(threadView(row, journal, row.status === 'running' || row.status === 'pending' ? callCountOf(journal.db, id) : row.calls))))
}

function weaveStopped(db: string, id: string): RaimentError {
  return new RaimentError('RAIMENT_WEAVE_STOPPED', `the weave on ${db} stopped before ${id} ended; it will run when a weave opens the journal again (raiment start)`)
}

/**
 * Thread type `type` of `--threads`, checked as a weave here would load it: its module, and the
 * libraries it uses among the built-ins and `--io-libs`.
 * @throws UnknownThreadType, InvalidThreadModule, UnknownLibrary
 */
async function runnableType(o: StartOptions, type: string): Promise<AnyThreadType> {
  const t = await threadType(o.threads, type)
  checkUses(new Map([[type, t]]), [...allLibraryFiles(o.ioLibs).keys()])
  return t
}

/**
 * Asks the weave running on the journal to spawn a thread, under an id chosen here; resolves to
 * the id once the spawn is durable.
 * @throws the weave's refusal, rebuilt as its class (UnknownThreadType, ThreadTypeUnavailable, …)
 * @throws RAIMENT_SPAWN_TIMEOUT when the weave does not answer within `waitMs` (the request is withdrawn: nothing is spawned)
 */
async function spawnInWeave(journal: Journal, owner: Owner, type: string, params: string, key: string | undefined, waitMs: number): Promise<string> {
  // A key's id is the caller's (checked by the weave's spawn as any); else one reserved here.
  const id = key !== undefined ? chosenId(journal.weaveId, key) : journal.nextThreadId(1)
  const reply = await askWeave(journal, 'spawn', id, JSON.stringify({ type, params, ...(key !== undefined ? { key: true } : {}) }), true, { waitMs })
  if (reply === null) {
    throw new RaimentError(
      'RAIMENT_SPAWN_TIMEOUT',
      `the weave (pid ${owner.pid}) on ${journal.file} did not take the spawn within ${waitText(waitMs)}; nothing was spawned. ${busyHint(waitMs)}`,
    )
  }
  let answer: { spawned?: string; refused?: string }
  try {
    answer = JSON.parse(reply) as typeof answer
  } catch {
    // A weave of a Raiment that did not take spawns this way: record it for that weave's poll.
    journal.insertThread(id, type, params, null, 'pending')
    journal.flushNow()
    return id
  }
  if (answer.refused !== undefined) throw decodeError(answer.refused)
  return answer.spawned ?? id
}

/** Polls the journal until the thread ends (a weave in another process runs it). */
async function waitInJournal(journal: Journal, id: string): Promise<ThreadEnd> {
  let checks = 0
  for (;;) {
    const row = journal.thread(id)
    if (row === undefined) throw new UnknownThread(id)
    const end = endOf(row, journal)
    if (end !== null) return end
    if (++checks % 20 === 0 && runningOwner(journal) === null) throw weaveStopped(journal.file, id)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** How a recorded thread ended, with where it moved to read from the journal. */
function endOf(row: ThreadRow, journal: Journal): ThreadEnd | null {
  const to = row.status === 'moved' ? movedTo(journal.db, row.id) : undefined
  return rowEnd(row, to ?? '(another weave)')
}

/**
 * Prints a thread's end: the result on stdout (exit 0), or why it did not return one on stderr
 * (exit 1). With `json`, stdout holds the thread's whole record (as `ps --json` prints it, with
 * `dump` when a dump was written) whatever the end.
 */
function printEnd(end: ThreadEnd, dump: string | null, journal: Journal, json = false): number {
  if (json) {
    const row = journal.thread(end.id)
    if (row !== undefined) say(JSON.stringify({ ...threadJson(threadView(row, journal)), ...(dump ? { dump: displayPath(dump) } : {}) }))
  }
  if (end.status === 'done') {
    if (!json) say(toText(end.result))
    return 0
  }
  if (end.status === 'killed') complain('RAIMENT_THREAD_KILLED', `thread ${end.id} was killed`)
  else if (end.status === 'moved') complain('RAIMENT_THREAD_MOVED', `thread ${end.id} moved to weave ${end.to}; it ends there (raiment ps on that weave's journal)`)
  else complain('RAIMENT_THREAD_FAILED', `thread ${end.id} failed: ${errorText(end.error)}${dump ? ` (dump: ${displayPath(dump)})` : ''}`)
  return 1
}

