/**
 * A Weave.open that fails midway leaves nothing of the weave running. Before, it closed only the
 * journal: a failure after the resume (here the program's onWarning throws at the warning of a
 * schedule whose type the weave lacks, given once the running threads were resumed) left those
 * threads and the weave's timers in memory, with no one to close them (its spawn still took work,
 * and the process at times did not exit). Now the weave is closed as at `close()` (no wait)
 * before the failure is thrown: it takes no more work, its owner lock goes, and the next open
 * resumes its threads. Likewise a failure as the weave is made (a RAIMENT_SECRET_KEY too short)
 * on a journal whose last weave crashed: the write of the dumps it owed, set for the next turn,
 * read the closed journal and threw in a timer, ending the process. Real SQLite files in temporary
 * directories, a weave process SIGKILLed.
 */
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { RaimentError, thread, Weave, WeaveClosed, type AnyThreadType } from 'raiment'
import { JournalLock } from '../src/journal-owner.js'
import { describeRun, runChild, supportScript } from './support/child.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    tick: { tick(): Promise<number> }
  }
}

/** Live calls of the `tick` library, in this process. */
let ticks = 0
/** The weave the `tick` library was last made for (a library's factory is given the weave's config). */
let made: Weave | null = null
const libraries = {
  tick: {
    default: (config: { weave?: Weave }) => {
      made = config.weave ?? null
      return { async tick(): Promise<number> { return ++ticks } }
    },
  },
}
const ticker = thread({
  uses: ['tick', 'clock'],
  async does() {
    for (;;) {
      await this.tick.tick()
      await this.clock.sleep(5)
    }
  },
}) as AnyThreadType
const other = thread({ uses: [], async does() { return 1 } }) as AnyThreadType
const turns = async (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('a Weave.open that fails midway', () => {
  test('after it resumed threads: they stop, its owner lock goes, and the next open resumes them', async () => {
    const db = join(tempDir(), 'w.db')
    const first = await Weave.open({ db, threads: { ticker, other }, ioLibs: false, dumps: false, libraries })
    const id = first.spawn('ticker')
    // A schedule of a type the next weave lacks: its warning comes after the resume.
    await first.schedules.add('yearly', { cron: '0 0 1 1 *', type: 'other' })
    while (ticks < 3) await turns(5)
    await first.close()
    const err = await Weave.open({ db, threads: { ticker }, ioLibs: false, dumps: false, libraries, onWarning: (w) => { throw w } }).catch((e: unknown) => e)
    expect((err as RaimentError).code).toBe('RAIMENT_SCHEDULE_BLOCKED')
    expect(JournalLock.held(db)).toBe(false)
    // The weave that failed to open is closed, as after close(): it takes no more work.
    const failed = made
    expect(failed).not.toBe(null)
    expect(() => failed!.spawn('ticker')).toThrow(WeaveClosed)
    // Its resumed thread makes no live call from here on (at 5 ms a turn, it would make several).
    const at = ticks
    await turns(100)
    expect(ticks).toBe(at)
    const again = await Weave.open({ db, threads: { ticker }, ioLibs: false, dumps: false, libraries, onWarning: () => {} })
    try {
      expect(again.journal.thread(id)?.status).toBe('running')
      while (ticks < at + 3) await turns(5)
    } finally {
      await again.close()
    }
  })

  test('as the weave is made, on a journal a crash left with dumps owed: no error comes after the failure (the owed dumps wait for the next open)', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    const dumps = join(dir, 'dumps')
    const child = supportScript('open-fails-child.ts')
    const crashed = await runChild(child, ['crash', db, dumps], { env: { RAIMENT_SECRET_KEY: '' }, killWhen: (l) => l === 'ready' })
    expect(crashed.killed, describeRun(crashed)).toBe(true)
    // A secret key too short fails the open as the weave is made, the journal owned already.
    const r = await runChild(child, ['open', db, dumps], { env: { RAIMENT_SECRET_KEY: 'short' } })
    expect(r.lines, describeRun(r)).toEqual(['refused RAIMENT_SECRET_KEY_UNUSABLE', 'lived'])
    expect(r.code, describeRun(r)).toBe(0)
    expect(JournalLock.held(db)).toBe(false)
  }, 60_000)
})
