/**
 * Hand-back: a replicated weave process SIGKILLed mid-storm is taken over by the other; started
 * again on its own journal directory, it asks the process hosting it to hand it back. That one
 * stops it (its threads' work is in the journal stream), the weave takes its lease, rebuilds
 * its journal from the stream (its old file set aside: its epoch is behind the stream's) and
 * runs its threads again itself: every thread ends as if uninterrupted, each effect once per
 * call id, a durable timer set before the loss fires in the process it was handed back to, and
 * the host does not take it over again.
 * Synchronisation is on the children's output lines.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { AMQP_URL, brokerUp, CI, requireBroker } from './support/broker.js'
import { deadline, freshRun, Ends, lineFrom, startReplWeave, tearDown, type WeaveProc } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

const COUNT = 40
const STEPS = 20
/** The waiter's durable sleep: past the loss, the takeover and the hand-back. */
const WAITER_MS = 12_000

describe.skipIf(!brokerUp && !CI)('hand-back of a weave taken over', () => {
  beforeAll(requireBroker)

  it('a weave started again after its takeover gets its journal back from the host and runs its threads itself', async () => {
    const ids = ['a', 'b']
    const { ns, effects } = await freshRun(ids)
    // Each weave's three threads and its waiter.
    const ends = new Ends(4 * ids.length)
    const procs: WeaveProc[] = []
    const ready = new Set<string>()
    let reached = -1
    let killed: () => void = () => {}
    const lost = new Promise<void>((r) => (killed = r))
    const onLine = (p: WeaveProc, line: string): void => {
      ends.line(line)
      if (line.startsWith('ready ')) ready.add(p.id)
      if (p === procs[0] && line.startsWith('progress a ')) reached = Math.max(reached, Number(line.split(' ')[2]))
      // Killed mid-storm, once b has heard it (b takes over only weaves it heard).
      if (p === procs[0] && ready.size === 2 && reached >= 10 && p.proc.exitCode === null && p.proc.signalCode === null) {
        p.proc.kill('SIGKILL')
        killed()
      }
    }
    const dirA = tempDir()
    const args = (id: string, dir: string) => ({ dir, id, ns, url: AMQP_URL, peers: ids.filter((x) => x !== id), count: COUNT, steps: STEPS, effects: effects.url, env: { REPL_WAITER_MS: String(WAITER_MS) } })
    try {
      procs.push(startReplWeave(args('a', dirA), onLine), startReplWeave(args('b', tempDir()), onLine))
      const b = procs[1]!
      const bound = deadline(80_000, procs, 'the hand-back run')
      try {
        await Promise.race([lost, bound.promise])
        await Promise.race([lineFrom(b, 'took a'), bound.promise])
        // Started again on its own directory: b hands it back, and it rebuilds its journal.
        const again = startReplWeave(args('a', dirA), onLine)
        procs.push(again)
        bound.clear()
        const bound2 = deadline(80_000, procs, 'the hand-back run')
        try {
          await Promise.race([lineFrom(b, 'handed a'), bound2.promise])
          await Promise.race([lineFrom(again, 'ready a'), bound2.promise])
          await Promise.race([ends.all, bound2.promise])
        } finally {
          bound2.clear()
        }
        if (process.env['HB_DEBUG']) console.log('AGAIN', again.lines.filter((l) => !l.startsWith('progress')).join('\n'), '\nB', b.lines.filter((l) => !l.startsWith('progress')).join('\n'))
        const logs = again.lines.filter((l) => l.startsWith('log '))
        expect(logs.some((l) => /^log raiment: weave a was taken over \(its stream is at epoch 2, .* at 1\); rebuilding /.test(l)), logs.join('\n')).toBe(true)
        expect(existsSync(join(dirA, 'a.db.epoch-1')), 'the old file, set aside').toBe(true)
        expect(existsSync(join(b.dir, 'a.taken.db')), "b's copy, stale once handed back").toBe(false)
        // The waiter's timer, set before the loss, fired where a runs now; b took a over once.
        expect(again.lines).toContain('done a/4 "woke"')
        expect(b.lines.filter((l) => l === 'took a')).toHaveLength(1)
        expect(b.lines.filter((l) => l.startsWith('done a/4'))).toEqual([])
      } finally {
        bound.clear()
      }
      ends.expectUninterrupted(ids, COUNT, STEPS)
      expect(effects.done.size).toBe(ids.length * STEPS)
    } finally {
      await tearDown(procs, AMQP_URL, ns, ids, effects)
    }
  }, 180_000)
})
