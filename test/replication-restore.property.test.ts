/**
 * A journal rebuilt from its stream replays every thread to the same state as the original file.
 *
 * Random thread programs (test/support/program.ts) run live on a weave that replicates its
 * journal (durability 'replicated', through the service broker): some run to their end, some
 * stop half-way in a receive, one registers a name and is monitored by another. Then the weave
 * closes, the journal is rebuilt from the stream (`rebuildJournal`) into a new file, and:
 * - the rebuilt file holds the same state (threads, the live threads' entries, every entry when
 *   no checkpoint ran, inboxes, names, watches, outbox, dead letters, meta);
 * - a weave opened on each file, sent the same messages, ends every thread the same way.
 * Every other run checkpoints after almost every batch (a tiny `checkpointBytes`), so a rebuild reads
 * a snapshot written while threads ran.
 *
 * Reproduce a failure with FC_SEED=<seed> (printed below).
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { callContext, thread, Weave, type ThreadEnd } from 'raiment'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { AMQP_URL, brokerUp, CI, freshNamespace } from './support/broker.js'
import { interpreter, OpFailed, realOps, topArb, type Prog } from './support/program.js'
import { dropStreams, journalState, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['FC_RUNS'] ?? 8)
console.log(`replication-restore: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

declare module 'raiment' {
  interface Libraries {
    probe: { at(tag: string): Promise<void> }
  }
}

/** Runs `before`, tells the test it waits, takes one message, runs `after`. */
const staged = thread({
  uses: ['ops', 'mailbox', 'probe', 'registry'],
  async does(p: { before: Prog; after: Prog; name?: string }) {
    if (p.name !== undefined) await this.registry.register(p.name)
    const run = async (prog: Prog): Promise<unknown> => {
      try {
        return await interpreter.does.call(this, { prog })
      } catch (e) {
        return { threw: (e as Error).message }
      }
    }
    const first = await run(p.before)
    await this.probe.at('waiting')
    const msg = await this.mailbox.receive()
    const second = await run(p.after)
    return { first, msg, second }
  },
})

/** Monitors a thread and returns the exit message it gets. */
const watcher = thread({
  uses: ['mailbox', 'threads', 'probe'],
  async does(p: { id: string }) {
    await this.threads.monitor(p.id)
    await this.probe.at('waiting')
    return await this.mailbox.receive()
  },
})

/**
 * `ops` whose calls complete at once, in the order made: what runs live after the copy (the rest
 * of a resumed thread) then runs the same on both files, where real timers could reorder it.
 */
const instantOps = {
  run(name: string, _delay: number, fail: boolean, tag: string): Promise<string> {
    const id = callContext().callId
    const ord = id.slice(id.lastIndexOf(':') + 1)
    return fail ? Promise.reject(new OpFailed(name, ord)) : Promise.resolve(`${name}${ord}${tag ? '<' + tag.length : ''}`)
  },
}

function comparable(end: ThreadEnd): unknown {
  if (end.status === 'done') return { status: 'done', result: end.result }
  if (end.status === 'failed') return { status: 'failed', error: end.error.message }
  return { status: end.status }
}

const run = brokerUp || CI ? describe : describe.skip
const namespaces: Array<[string, string]> = []
let runs = 0
let checkpointed = 0

afterAll(async () => {
  if (brokerUp) for (const [ns, id] of namespaces) await dropStreams(ns, id).catch(() => {})
})

run('a journal rebuilt from its stream', () => {
  it('replays every thread to the same state as the original file', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(topArb(), { minLength: 1, maxLength: 4 }),
        fc.array(fc.record({ before: topArb(), after: topArb(), go: fc.boolean() }), { minLength: 1, maxLength: 4 }),
        async (plain, stagedProgs) => {
          const checkpoints = runs++ % 2 === 1
          const ns = freshNamespace()
          const weaveId = 'r'
          namespaces.push([ns, weaveId])
          const dir = tempDir('raiment-restore-')
          const original = join(dir, 'a.db')
          const rebuilt = join(dir, 'b.db')
          let waiting = 0
          let wake: () => void = () => {}
          const probe = { at: async () => void (waiting++, wake()) }
          const threads = { interp: interpreter, staged, watcher }
          const r = await openReplicated(ns, { db: original, weaveId, threads, libraries: { ops: realOps().lib, probe } }, checkpoints ? { checkpointBytes: 2_000 } : {})
          const w = r.weave
          const stagedIds = stagedProgs.map((s, i) => w.spawn('staged', { before: s.before, after: s.after, ...(i === 0 ? { name: 'first' } : {}) }))
          const watcherId = w.spawn('watcher', { id: stagedIds[0]! })
          const plainIds = plain.map((prog) => w.spawn('interp', { prog }))
          await new Promise<void>((res) => {
            wake = () => waiting === stagedIds.length + 1 && res()
            wake()
          })
          // Some staged threads go on to their end now; the others stay waiting (live) in the copy.
          const goNow = stagedIds.filter((_, i) => stagedProgs[i]!.go)
          for (const id of goNow) w.send(id, { now: id })
          for (const id of [...plainIds, ...goNow]) await w.join(id)
          await w.committed()
          // Every record confirmed, and a checkpoint the last batches started made current.
          await r.link.replicator!.settled()
          await r.close()
          const generation = r.link.replicator!.generation

          const result = await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId, file: rebuilt })
          expect(result.generation).toBe(generation)
          if (generation > 1) checkpointed++
          const allEntries = result.generation === 1
          expect(journalState(rebuilt, allEntries)).toEqual(journalState(original, allEntries))

          // Both files, run on: the same messages, the same ends.
          const ends: unknown[][] = []
          for (const file of [original, rebuilt]) {
            const weave = await Weave.open({ db: file, threads, libraries: { ops: instantOps, probe: { at: async () => {} } }, ioLibs: false, dumps: false, replicate: false })
            try {
              for (const id of stagedIds) if (!goNow.includes(id)) weave.send(id, { later: id })
              ends.push(await Promise.all([...stagedIds, watcherId, ...plainIds].map(async (id) => comparable(await weave.join(id)))))
            } finally {
              await weave.close()
            }
          }
          expect(ends[1]).toEqual(ends[0])
        },
      ),
      { numRuns: RUNS, seed, endOnFailure: true },
    )
    // The runs with a tiny checkpointBytes did rebuild from a later generation.
    if (RUNS >= 2) expect(checkpointed).toBeGreaterThan(0)
  }, 120_000)
})
