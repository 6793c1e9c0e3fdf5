/**
 * A schedule is in its journal's replication stream: a journal rebuilt from the stream (as a
 * takeover rebuilds it) holds the schedule and how far it has fired, and a weave on it carries on
 * from there, with the same thread ids and no time fired twice.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { dropStreams, openReplicated } from './support/replication.js'
import { TestClock } from './support/schedule-clock.js'
import { tempDir } from './support/tmp.js'

const tick = thread({ uses: [], async does(p: { scheduledAt: string }) { return p.scheduledAt } })

describe.skipIf(!brokerUp && !CI)('schedules and replication', () => {
  const ns = freshNamespace()
  afterAll(async () => {
    await dropStreams(ns, 'sched').catch(() => {})
    await removeNamespace(ns, ['sched']).catch(() => {})
  })

  it('a journal rebuilt from its stream fires on from where the schedule was', async () => {
    const dir = tempDir()
    const clock = new TestClock(Date.parse('2026-05-01T12:00:10Z'))
    const r = await openReplicated(ns, { db: join(dir, 'a.db'), weaveId: 'sched', threads: { tick }, scheduleClock: clock })
    await r.weave.schedules.add('minute', { cron: '* * * * *', type: 'tick', missed: 'all' })
    await clock.advance(Date.parse('2026-05-01T12:02:30Z'), r.weave)
    await r.link.replicator!.flushed()
    await r.close()

    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'sched', file: join(dir, 'b.db') })
    const raw = new Database(join(dir, 'b.db'), { readonly: true })
    expect(raw.prepare('SELECT name, missed, upto, last_fired, last_thread FROM schedules').all()).toEqual([
      { name: 'minute', missed: 'all', upto: Date.parse('2026-05-01T12:02:00Z'), last_fired: Date.parse('2026-05-01T12:02:00Z'), last_thread: 'sched/minute@20260501T120200Z' },
    ])
    raw.close()
    // Two minutes later: the times missed meanwhile, then the next, by the schedule's policy.
    clock.t = Date.parse('2026-05-01T12:04:30Z')
    const weave = await Weave.open({ db: join(dir, 'b.db'), threads: { tick }, ioLibs: false, dumps: false, durability: 'memory', scheduleClock: clock })
    await clock.advance(Date.parse('2026-05-01T12:05:10Z'), weave)
    await weave.committed()
    const ids = weave.journal.threads().map((t) => t.id).sort()
    expect(ids).toEqual(['01', '02', '03', '04', '05'].map((m) => `sched/minute@20260501T12${m}00Z`))
    await weave.close()
  })
})
