/** The journal's types: its durabilities, its rows as read, and how it is opened (src/journal.ts). */
import type { Journal } from './journal.js'

/** `replicated`: as `sync`, and an outcome is released only once the broker has it too (src/replication/). */
export type Durability = 'sync' | 'batched' | 'memory' | 'replicated'
export const DURABILITIES: readonly Durability[] = ['sync', 'batched', 'memory', 'replicated']


/** 'moved': the thread runs on another weave now (see `forwards`); not alive here, never resumed here. */
export type ThreadStatus = 'pending' | 'running' | 'done' | 'failed' | 'killed' | 'moved'

export interface ThreadRow {
  id: string
  type: string
  params: string
  parent: string | null
  status: ThreadStatus
  outcome: string | null
  created: number
  ended: number | null
  calls: number
  /** The trace context of the thread's latest run, when OpenTelemetry was on (src/observer.ts). */
  trace?: string | null
  /** Its call scope (src/call-context.ts `callScope`); null (or absent) for a thread of an older journal. */
  scope?: string | null
}

/** A journal entry as stored: [seq, key, ord, ok, outcome, started, duration]. */
export type EntryRow = [number, string, number, 0 | 1, string, number, number]

export interface JournalOptions {
  durability?: Durability
  /**
   * Open read-only and refuse a missing file (for the CLI's inspection commands): no lock is
   * taken and no file is created.
   */
  readonly?: boolean
  /**
   * Take the journal's owner lock and hold it until `close` (default true for a writable
   * journal): whatever runs threads on the journal must. `false`: write beside the owner, if one
   * runs, without the lock (the CLI's spawn, send and kill: rows the owner picks up).
   * @throws JournalOwned (from the constructor) when another owner holds the journal
   */
  own?: boolean
  /** Called in the owner's first transaction, before it writes anything: a throw refuses the journal, which it leaves as it was. */
  beforeOwn?: (journal: Journal) => void
  /** The weave id written into a new journal; defaults to host name and file name. */
  weaveId?: string
}
