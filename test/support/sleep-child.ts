/**
 * The weave process of the durable-sleep test:
 *   node --conditions=raiment-source --import tsx test/support/sleep-child.ts DIR
 * runs one thread that reads the clock, sleeps 1500 ms with clock.sleep, reads the clock again,
 * and returns both readings. The built-in clock is used as it is, except that `sleepUntil` first
 * prints `sleep-until <deadline> <now>` (so the test knows, from an event, when the thread has
 * started sleeping and until when). Prints `end <status> <json>` when the thread ends, then exits.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'
import clockLib, { threadSide } from '../../io-libs/clock.js'

/** The clock library as a weave on the real clock makes it. */
const clock = clockLib({ db: '', weaveId: 'child' })

const dir = process.argv[2]
if (!dir) throw new Error('usage: sleep-child.ts DIR')
const say = (line: string): void => void writeSync(1, line + '\n')

const SLEEP_MS = 1500

const sleeper = thread({
  uses: ['clock'],
  async does() {
    const t0 = await this.clock.now()
    await this.clock.sleep(SLEEP_MS)
    const t1 = await this.clock.now()
    return { t0, t1 }
  },
})

const announcing = {
  now: () => clock.now(),
  sleepUntil(at: number): Promise<void> {
    say(`sleep-until ${at} ${Date.now()}`)
    return clock.sleepUntil(at)
  },
}

const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { sleeper },
  libraries: { clock: { default: announcing, threadSide } },
  ioLibs: false,
  dumps: false,
})
weave.on('thread-end', (end) => {
  say(`end ${end.status} ${JSON.stringify(end.status === 'done' ? end.result : end)}`)
  void weave.close().then(() => process.exit(0))
})
say(`started resumed=${weave.resumed}`)
if (weave.journal.threads().length === 0) weave.spawn('sleeper')
