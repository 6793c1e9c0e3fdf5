/**
 * The journal's schema: the application id that marks a file as a Raiment journal, and the
 * migrations that take a journal from each schema version to the next, and the check a file
 * gets when it is opened (checkAndMigrate: it applies them when an owner opens an older file).
 *
 * Invariant: MIGRATIONS is append-only; a released migration is never edited.
 */

import type Database from 'better-sqlite3'
import { continueMigration } from './continue/schema.js'
import { DbTooNew, EmptyDb, InvalidArgument, JournalDamaged, NotARaimentDb } from './errors.js'
import { JournalLock } from './journal-owner.js'
import { filterMigration, passivationMigration } from './passivation/schema.js'
import { retryMigration } from './retry/schema.js'
import { schedulesMigration } from './schedules/schema.js'

/** 'RAIM' */
export const APPLICATION_ID = 0x5241494d

/** Append-only: migration i takes the schema from version i to i + 1. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE threads (
     id TEXT PRIMARY KEY,
     type TEXT NOT NULL,
     params TEXT NOT NULL,
     parent TEXT,
     status TEXT NOT NULL,
     outcome TEXT,
     created INTEGER NOT NULL,
     ended INTEGER,
     calls INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX threads_status ON threads(status);
   CREATE TABLE journal (
     thread TEXT NOT NULL,
     seq INTEGER NOT NULL,
     key TEXT NOT NULL,
     ord INTEGER NOT NULL,
     ok INTEGER NOT NULL,
     outcome TEXT NOT NULL,
     started REAL NOT NULL,
     duration REAL NOT NULL,
     PRIMARY KEY (thread, seq)
   ) WITHOUT ROWID;
   CREATE TABLE control (
     n INTEGER PRIMARY KEY,
     kind TEXT NOT NULL,
     thread TEXT,
     arg TEXT,
     reply TEXT,
     done INTEGER NOT NULL DEFAULT 0
   );`,
  `CREATE TABLE inbox (
     n INTEGER PRIMARY KEY AUTOINCREMENT,
     thread TEXT NOT NULL,
     sender TEXT,
     msg_id TEXT NOT NULL UNIQUE,
     body TEXT NOT NULL,
     at INTEGER NOT NULL
   );
   CREATE INDEX inbox_thread ON inbox(thread, n);
   CREATE TABLE names (name TEXT PRIMARY KEY, thread TEXT NOT NULL) WITHOUT ROWID;
   CREATE INDEX names_thread ON names(thread);
   CREATE TABLE watches (
     target TEXT NOT NULL,
     watcher TEXT NOT NULL,
     kind TEXT NOT NULL,
     PRIMARY KEY (target, watcher, kind)
   ) WITHOUT ROWID;
   CREATE TABLE traps (thread TEXT PRIMARY KEY) WITHOUT ROWID;
   CREATE TABLE dead_letters (
     n INTEGER PRIMARY KEY,
     sender TEXT,
     recipient TEXT NOT NULL,
     body TEXT NOT NULL,
     reason TEXT NOT NULL,
     at INTEGER NOT NULL
   );`,
  // Messages and spawns for other weaves, until the broker confirms them; ids of messages taken
  // from other weaves, so a redelivered one is ignored.
  `CREATE TABLE outbox (
     n INTEGER PRIMARY KEY AUTOINCREMENT,
     msg_id TEXT NOT NULL UNIQUE,
     dest TEXT NOT NULL,
     body TEXT NOT NULL,
     at INTEGER NOT NULL
   );
   CREATE TABLE received (msg_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;`,
  // Threads that moved to another weave (status 'moved'), and where: messages for them go there.
  `CREATE TABLE forwards (thread TEXT PRIMARY KEY, weave TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;`,
  // A commit of a few entries each of many threads appends them to journal_tail, in commit order:
  // a page or two, where journal_main, which keeps each thread's entries together, takes a page
  // per thread (and the fsync'd write grows with the pages). The tail moves into journal_main in
  // bulk (Journal.#moveTail). The view `journal` is both, as the table was; writes to it go to
  // journal_main.
  `ALTER TABLE journal RENAME TO journal_main;
   CREATE TABLE journal_tail (
     n INTEGER PRIMARY KEY,
     thread TEXT NOT NULL,
     seq INTEGER NOT NULL,
     key TEXT NOT NULL,
     ord INTEGER NOT NULL,
     ok INTEGER NOT NULL,
     outcome TEXT NOT NULL,
     started REAL NOT NULL,
     duration REAL NOT NULL
   );
   CREATE VIEW journal AS
     SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal_main
     UNION ALL
     SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal_tail;
   CREATE TRIGGER journal_insert INSTEAD OF INSERT ON journal BEGIN
     INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration)
     VALUES (NEW.thread, NEW.seq, NEW.key, NEW.ord, NEW.ok, NEW.outcome, NEW.started, NEW.duration);
   END;
   CREATE TRIGGER journal_delete INSTEAD OF DELETE ON journal BEGIN
     DELETE FROM journal_main WHERE thread = OLD.thread AND seq = OLD.seq;
     DELETE FROM journal_tail WHERE thread = OLD.thread AND seq = OLD.seq;
   END;`,
  // Pruning of received (src/received.ts): where each id taken from another weave came from (the
  // sending journal, its outbox row and the row before it for this weave), how far each sender's
  // rows are known taken, the last row confirmed per destination here, and this journal's id.
  `ALTER TABLE received ADD COLUMN src TEXT;
   ALTER TABLE received ADD COLUMN sn INTEGER;
   ALTER TABLE received ADD COLUMN prev INTEGER;
   CREATE INDEX received_src ON received(src, sn) WHERE src IS NOT NULL;
   CREATE TABLE received_chains (src TEXT PRIMARY KEY, base INTEGER NOT NULL, base_prev INTEGER, upto INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE outbox_sent (dest TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
   INSERT OR IGNORE INTO meta (k, v) VALUES ('journal_id', lower(hex(randomblob(8))));`,
  // Names across weaves (src/name-sends.ts, src/amqp/name-owners.ts): the weave and thread each
  // name was last heard registered on, and messages sent by a name no weave was known to hold
  // yet, waiting (in send order) until one is or the membership says none does.
  `CREATE TABLE name_owners (name TEXT PRIMARY KEY, weave TEXT NOT NULL, thread TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE outbox_names (
     n INTEGER PRIMARY KEY AUTOINCREMENT,
     msg_id TEXT NOT NULL UNIQUE,
     name TEXT NOT NULL,
     sender TEXT,
     body TEXT NOT NULL,
     at INTEGER NOT NULL
   );
   CREATE INDEX outbox_names_name ON outbox_names(name, n);`,
  // Schedules (src/schedules/): one row per schedule, with the time it has fired up to.
  schedulesMigration(),
  // Listings of a large journal (raiment ui): a page of threads of one type (and status), newest
  // first, and a thread's children, read through an index instead of the whole table.
  `CREATE INDEX IF NOT EXISTS threads_type ON threads(type);
   CREATE INDEX IF NOT EXISTS threads_type_status ON threads(type, status);
   CREATE INDEX IF NOT EXISTS threads_parent ON threads(parent) WHERE parent IS NOT NULL;`,
  // Trace contexts (W3C traceparent, src/observer.ts) recorded with what carries them, when
  // OpenTelemetry is on: a thread's last run, and the send that made a message or envelope.
  `ALTER TABLE threads ADD COLUMN trace TEXT;
   ALTER TABLE inbox ADD COLUMN trace TEXT;
   ALTER TABLE outbox ADD COLUMN trace TEXT;`,
  // Retries (src/retry/): each failed attempt of a retried call, with when the next is due.
  retryMigration(),
  // Trace contexts of messages sent by a name no weave was known to hold yet (src/name-sends.ts),
  // kept while they wait.
  `ALTER TABLE outbox_names ADD COLUMN trace TEXT;`,
  // Continue-as-new (src/continue/): how many times each thread continued as new.
  continueMigration(),
  // Passivation (src/passivation/): what wakes each thread that left memory while it waited.
  passivationMigration(),
  // Passivation: which message wakes a passivated receiver (its pattern), not any message.
  filterMigration(),
  // The id of a message sent from outside (raiment send, the UI), chosen by the asker: unique
  // whatever journal answers it (a rebuilt one numbers its requests from 1 again).
  `ALTER TABLE control ADD COLUMN msg_id TEXT;`,
  // Names of threads that moved from here, announced as moved until their new weave announces
  // them (src/name-sends.ts): kept across a restart of this weave, and in its stream.
  `CREATE TABLE moved_names (name TEXT PRIMARY KEY, thread TEXT NOT NULL) WITHOUT ROWID;`,
  // The entries whose key holds a secret's marker (src/secrets/marker.ts MARK), indexed alone: a
  // resume asks whether a long record holds one with a seek, not a scan of it (src/replay-load.ts).
  `CREATE INDEX journal_marked ON journal_main(thread, seq) WHERE instr(key, '[secret') > 0;`,
  // Threads that moved here, whose earlier messages from here may still be on the way (src/catch-up.ts).
  `CREATE TABLE catch_up (thread TEXT PRIMARY KEY, via TEXT NOT NULL, fence TEXT NOT NULL, since INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE catch_up_held (n INTEGER PRIMARY KEY AUTOINCREMENT, thread TEXT NOT NULL, sender TEXT, body TEXT NOT NULL, msg_id TEXT NOT NULL, at INTEGER NOT NULL, trace TEXT);
   CREATE INDEX catch_up_held_thread ON catch_up_held(thread, n);`,
  // Envelopes from another weave that came ahead of the one before them from their sender, parked
  // until it comes (src/amqp/resequence.ts); and the row before an outbox row the broker refused,
  // for its publish after a restart (src/amqp/relay.ts).
  `CREATE TABLE parked (src TEXT NOT NULL, sn INTEGER NOT NULL, prev INTEGER NOT NULL, msg_id TEXT NOT NULL, body TEXT NOT NULL, trace TEXT, at INTEGER NOT NULL, PRIMARY KEY (src, sn)) WITHOUT ROWID;
   ALTER TABLE outbox ADD COLUMN prev INTEGER;`,
  // A thread's call scope (src/call-context.ts callScope): random, made with its row and kept with
  // it wherever it goes (a move, a takeover), so that its call ids differ from those of a thread
  // of the same id in another journal (one made again under the same weave id). Null for the
  // threads of older journals: their call ids are as they were.
  `ALTER TABLE threads ADD COLUMN scope TEXT;`,
  // Watches by watcher: a watched thread's end deletes the rows where it is the target or the
  // watcher (src/thread-registry.ts), a scan of the table without it, in the group commit.
  `CREATE INDEX IF NOT EXISTS watches_watcher ON watches(watcher);`,
  // Dead letters numbered for good (AUTOINCREMENT): `raiment dead-letters --resend/--drop N` names
  // one by its number, which a dead letter made after the newest was dropped took again before.
  `CREATE TABLE dead_letters_numbered (n INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT, recipient TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);
   INSERT INTO dead_letters_numbered (n, sender, recipient, body, reason, at) SELECT n, sender, recipient, body, reason, at FROM dead_letters;
   DROP TABLE dead_letters;
   ALTER TABLE dead_letters_numbered RENAME TO dead_letters;`,
  // Keyed sends from outside a thread (src/send-keys.ts): each (receiver, key) sent or taken here,
  // when, and the first send's result where this weave sent it; pruned by age.
  `CREATE TABLE IF NOT EXISTS send_keys (receiver TEXT NOT NULL, key TEXT NOT NULL, at INTEGER NOT NULL, result TEXT, PRIMARY KEY (receiver, key)) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS send_keys_at ON send_keys(at);`,
  // Successions (src/successions.ts): a thread whose messages and names its keeper (the thread that
  // spawned it, e.g. a supervisor) holds, at its end, for a successor; and the successor they went to.
  `CREATE TABLE IF NOT EXISTS successions (thread TEXT PRIMARY KEY, keeper TEXT NOT NULL, on_end TEXT NOT NULL, held INTEGER NOT NULL DEFAULT 0, successor TEXT) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS successions_keeper ON successions(keeper);`,
]

export const SCHEMA_VERSION = MIGRATIONS.length

/**
 * Checks that `db` (the file `file`) is a Raiment journal this version can open, and migrates an
 * older one to SCHEMA_VERSION when it may write to it. `own`: it will run a weave, so it takes the
 * owner lock (`takeLock`) before any write.
 * @throws NotARaimentDb, JournalDamaged, DbTooNew, EmptyDb, InvalidArgument (left untouched)
 */
export function checkAndMigrate(db: Database.Database, file: string, readonly: boolean, own: boolean, takeLock: () => void): void {
  let appId: number
  let version: number
  let tables: number
  try {
    appId = db.pragma('application_id', { simple: true }) as number
    version = db.pragma('user_version', { simple: true }) as number
    tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n
  } catch (e) {
    if (String((e as { code?: unknown }).code).startsWith('SQLITE_CORRUPT')) throw new JournalDamaged(file, (e as Error).message, e)
    throw new NotARaimentDb(file, (e as Error).message)
  }
  if (appId !== APPLICATION_ID && !(appId === 0 && version === 0 && tables === 0)) {
    throw new NotARaimentDb(file, 'it is an SQLite database of another application')
  }
  if (version > SCHEMA_VERSION) throw new DbTooNew(file, version, SCHEMA_VERSION)
  // A file that may be written to: its owner lock first, before any write.
  if (own) takeLock()
  if (version === SCHEMA_VERSION) return
  if (!own && !readonly && JournalLock.held(file)) {
    throw new InvalidArgument(`${file} has schema version ${version}, older than this Raiment's, and an older Raiment runs a weave on it; stop that weave and start it with this Raiment (which migrates the journal), then run this again`)
  }
  if (readonly) {
    if (version === 0 && tables === 0) throw new EmptyDb(file)
    throw new InvalidArgument(`${file} has schema version ${version}; open it once with 'raiment start' to migrate it`)
  }
  db.transaction(() => {
    // Another process may have migrated the file while this one waited for the lock.
    const from = db.pragma('user_version', { simple: true }) as number
    for (let v = from; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!)
    db.pragma(`application_id = ${APPLICATION_ID}`)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}
