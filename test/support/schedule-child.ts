/**
 * The weave process of the schedules crash test:
 *   node --conditions=raiment-source --import tsx test/support/schedule-child.ts DIR [UNTIL]
 * opens a weave on DIR/w.db (durability sync) whose schedule `every` (added on the first run)
 * spawns a thread at every second, missed times `all`. Prints `ready`, then `started <id>` as
 * each thread it spawns starts. With UNTIL (ms since the epoch), it stops at that time once the
 * times up to it are fired and durable, prints `end` and exits; its clock stops there, so no
 * time after it is fired.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave, type ScheduleClock } from 'raiment'

const dir = process.argv[2]
if (!dir) throw new Error('usage: schedule-child.ts DIR [UNTIL]')
const until = process.argv[3] !== undefined ? Number(process.argv[3]) : Infinity
const say = (line: string): void => void writeSync(1, line + '\n')

const tick = thread({ uses: [], async does(p: { scheduledAt: string }) { return p.scheduledAt } })

const clock: ScheduleClock = {
  now: () => Math.min(Date.now(), until),
  setTimer(at, fire) {
    if (at > until) return () => {}
    const t = setTimeout(fire, Math.max(at - Date.now(), 1))
    return () => clearTimeout(t)
  },
}

const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { tick }, ioLibs: false, dumps: false, scheduleClock: clock })
weave.on('thread-start', ({ id, resumed }) => {
  if (!resumed) say(`started ${id}`)
})
if (weave.schedules.get('every') === undefined) await weave.schedules.add('every', { cron: '* * * * * *', type: 'tick', missed: 'all' })
say('ready')
const keepAlive = setInterval(() => {}, 1 << 30)
if (until !== Infinity) {
  // After the schedule's own timer for `until` (armed earlier, for the same or an earlier moment).
  setTimeout(() => {
    void weave
      .committed()
      .then(() => weave.close())
      .then(() => {
        clearInterval(keepAlive)
        say('end')
        process.exit(0)
      })
  }, Math.max(until - Date.now(), 0) + 20)
}
