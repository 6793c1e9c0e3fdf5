/**
 * What the replication tests share: a replicated weave on a fresh namespace of the service
 * broker, the comparable state of a journal file, and the removal of a journal's streams.
 */
import amqp from 'amqplib'
import Database from 'better-sqlite3'
import { Weave, type WeaveOptions } from 'raiment'
import { AmqpLink, type AmqpOptions } from '../../src/amqp/link.js'
import { OUTBOX_GAP, THREAD_GAP } from '../../src/replication/rebuild.js'
import { deleteJournalStreams } from '../../src/replication/streams.js'
import { AMQP_URL } from './broker.js'

export interface Replicated {
  weave: Weave
  link: AmqpLink
  close(): Promise<void>
}

/** A weave replicating its journal to `ns` (durability 'replicated' unless told otherwise). */
export async function openReplicated(ns: string, o: WeaveOptions, replication: AmqpOptions['replication'] = {}): Promise<Replicated> {
  const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, log: () => {}, replication })
  let weave: Weave
  try {
    weave = await Weave.open({ durability: 'replicated', dumps: false, ioLibs: false, ...o, remote: link, replicate: true })
  } catch (e) {
    await link.close()
    throw e
  }
  await link.start(weave)
  return {
    weave,
    link,
    async close() {
      await weave.close()
      await link.close()
    },
  }
}

/** Deletes a journal's streams (head and current generation) from the service broker. */
export async function dropStreams(ns: string, weaveId: string): Promise<void> {
  const conn = await amqp.connect(AMQP_URL, { noDelay: true })
  try {
    await deleteJournalStreams(conn, ns, weaveId)
  } finally {
    await conn.close()
  }
}

/** meta keys that differ between a journal and its copy by design (local to a file). */
const LOCAL = new Set(['owner', 'rseq', 'repl_epoch', 'replicating', 'dumps-due', 'schedules-blocked'])

/**
 * A journal file's state as a rebuild must reproduce it: every thread row, the entries of the
 * live threads (of every thread with `allEntries`), inboxes, names, watches, traps, outbox, dead
 * letters, received ids, forwards, and meta (without the keys local to one file).
 */
export function journalState(file: string, allEntries: boolean): Record<string, unknown> {
  const db = new Database(file, { readonly: true })
  try {
    const all = (sql: string): unknown[] => db.prepare(sql).raw(true).all()
    const live = allEntries ? '' : "WHERE thread IN (SELECT id FROM threads WHERE status IN ('pending', 'running'))"
    return {
      threads: all('SELECT * FROM threads ORDER BY id'),
      entries: all(`SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal ${live} ORDER BY thread, seq`),
      inbox: all('SELECT * FROM inbox ORDER BY n'),
      names: all('SELECT * FROM names ORDER BY name'),
      watches: all('SELECT * FROM watches ORDER BY target, watcher, kind'),
      traps: all('SELECT * FROM traps ORDER BY thread'),
      outbox: all('SELECT * FROM outbox ORDER BY n'),
      deadLetters: all('SELECT * FROM dead_letters ORDER BY n'),
      received: all('SELECT * FROM received ORDER BY msg_id'),
      forwards: all('SELECT * FROM forwards ORDER BY thread'),
      // A rebuild numbers new outbox rows OUTBOX_GAP past the stream's (src/replication/rebuild.ts).
      sequences: (all('SELECT name, seq FROM sqlite_sequence ORDER BY name') as Array<[string, number]>)
        .map(([name, seq]) => [name, name === 'outbox' ? seq % OUTBOX_GAP : seq])
        .filter(([, seq]) => (seq as number) > 0),
      // And its next thread number THREAD_GAP past the stream's.
      meta: (all('SELECT k, v FROM meta ORDER BY k') as Array<[string, string]>).filter(([k]) => !LOCAL.has(k)).map(([k, v]) => [k, k === 'next_thread' ? String(Number(v) % THREAD_GAP) : v]),
    }
  } finally {
    db.close()
  }
}
