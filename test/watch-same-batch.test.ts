/**
 * Exit signals to threads at the edges of a batch or a resume:
 * - a watch set up in the batch in which its target ends: a thread that monitors (or links to) a
 *   thread whose end is queued in the same group commit is told of that end. The watch's row is
 *   not committed when the end reads who watches the target (the end's DELETE follows its INSERT
 *   in the batch), so the registry counts the watches queued too. Both threads wake on outcomes
 *   committed in one batch (a gate the test opens), so their next steps fall in one batch;
 * - a thread linked to one that ends at a weave's open (its type is gone) before the resume
 *   comes to it: it ends with the link, not adopted as if nothing had happened.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, TIMED_OUT, Weave, type AnyThreadType } from 'raiment'
import { tempDir } from './support/tmp.js'

/**
 * Both threads wait on one gate, a library call (not journal-only: its outcome reaches a thread
 * once committed), and the test opens it for both at once: their outcomes commit in one batch
 * and are released in one round, so the watcher's watch and the quitter's end are queued in the
 * next batch together. (A mailbox take would reach its thread before its commit, and the
 * watcher's link, not journal-only, would wait for that commit: after the quitter's end.)
 */
let opened: Array<() => void> = []
const gate = {
  wait(): Promise<void> {
    return new Promise((resolve) => opened.push(resolve))
  },
}
/** Opens the gate once `n` threads wait at it. */
async function open(n: number): Promise<void> {
  while (opened.length < n) await new Promise((r) => setImmediate(r))
  const all = opened
  opened = []
  for (const resolve of all) resolve()
}

declare module 'raiment' {
  interface Libraries {
    sameBatch: typeof gate
  }
}

/** Waits at the gate, then ends (failing if told to). */
const quitter = thread({
  uses: ['sameBatch'],
  async does(p: { fail?: boolean }) {
    await this.sameBatch.wait()
    if (p.fail === true) throw new Error('told to fail')
    return 'bye'
  },
})

/** Waits at the gate, monitors or links to `target`, and returns what it hears of it. */
const watcher = thread({
  uses: ['sameBatch', 'mailbox', 'threads'],
  async does(p: { how: 'monitor' | 'link'; target: string }) {
    await this.sameBatch.wait()
    if (p.how === 'monitor') await this.threads.monitor(p.target)
    else await this.threads.link(p.target)
    // A bound on waiting for what never comes (the bug): its absence is the failure.
    const e = await this.mailbox.receive({ timeout: 10_000 })
    return e === TIMED_OUT ? 'nothing heard' : e
  },
})

/** Links to `other`, then waits for messages until told to stop. */
const partner = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { other: string }) {
    await this.threads.link(p.other)
    while ((await this.mailbox.receive()) !== 'stop');
    return 'stopped'
  },
})

const threads = { quitter, watcher, partner } as Record<string, AnyThreadType>

describe('a watch queued in the batch of its target end', () => {
  for (const durability of ['sync', 'memory'] as const) {
    it(`a monitor gets the exit message, a linked thread ends with its target (${durability})`, async () => {
      const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability, threads, libraries: { sameBatch: gate }, dumps: false, ioLibs: false })
      try {
        for (let i = 0; i < 3; i++) {
          const b = weave.spawn('quitter', {})
          const a = weave.spawn('watcher', { how: 'monitor', target: b })
          // Both wake in one release: a's monitor and b's end are queued in one batch.
          await open(2)
          expect(await weave.join(a)).toMatchObject({ status: 'done', result: { exit: b, status: 'done', result: 'bye' } })
        }
        const b = weave.spawn('quitter', { fail: true })
        const a = weave.spawn('watcher', { how: 'link', target: b })
        await open(2)
        expect((await weave.join(b)).status).toBe('failed')
        // Ended by the link (its receive would have timed out with 'nothing heard').
        expect(await weave.join(a)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
      } finally {
        await weave.close()
      }
    }, 60_000)
  }

  it('a thread linked to one whose type is gone at the next open: that one waits for its type, and a kill of it, before the resume comes to its partner, ends the partner too', async () => {
    const db = join(tempDir(), 'w.db')
    const first = await Weave.open({ db, threads, libraries: { sameBatch: gate }, dumps: false, ioLibs: false, passivateAfter: false })
    // Spawned first: the resume comes to it first.
    const doomed = first.spawn('quitter', {})
    const p = first.spawn('partner', { other: doomed })
    const linked = first.journal.db.prepare('SELECT 1 FROM watches WHERE target = ? AND watcher = ?').pluck()
    while (linked.get(doomed, p) === undefined) await new Promise((r) => setImmediate(r))
    await first.close()
    const second = await Weave.open({ db, threads: { partner }, dumps: false, ioLibs: false, passivateAfter: false, onWarning: () => {} })
    try {
      // It waits (src/weave-parked.ts) until killed.
      expect(second.journal.thread(doomed)?.status).toBe('running')
      expect(second.kill(doomed)).toBe(true)
      expect(await second.join(doomed)).toMatchObject({ status: 'killed' })
      // A bound on waiting for what would never come (the partner running on as if linked to nothing).
      const end = await Promise.race([second.join(p), new Promise((r) => setTimeout(() => r('ran on'), 10_000))])
      expect(end).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
    } finally {
      await second.close()
    }
  }, 30_000)
})
