/**
 * The weave process of the continue-as-new crash test. Run it with
 *   node --conditions=raiment-source --import tsx test/support/continue-child.ts DIR COUNT EVERY
 * It opens `DIR/weave.db` (durability 'sync', resuming whatever was running); on its first run it
 * spawns an `actor` (test/support/continue-plan.ts) that continues as new every EVERY messages and
 * a `feeder` that sends it COUNT messages, then stop, and joins it. It prints `started`, the `cfx`
 * library's progress lines (`tick <callId>`, `seen <n>`), `end <id> <status>` when a thread ends,
 * and `all-done` once both have ended, then exits 0. RAIMENT_CRASH_AT makes it kill itself at a
 * named crash point (src/crash-points.ts).
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { Weave } from 'raiment'
import { actor, feeder, fxLibrary } from './continue-plan.js'

const [dir, countText, everyText] = process.argv.slice(2)
if (!dir || !countText || !everyText) throw new Error('usage: continue-child.ts DIR COUNT EVERY')

const say = (line: string): void => void writeSync(1, line + '\n')

const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { actor, feeder },
  libraries: { cfx: fxLibrary(join(dir, 'effects.db'), say) },
  ioLibs: false,
  dumps: false,
})
weave.on('error', (e) => say(`error ${e.message}`))

const check = async (): Promise<void> => {
  const rows = weave.journal.threads()
  if (rows.length === 2 && rows.every((r) => r.status !== 'running' && r.status !== 'pending')) {
    say('all-done')
    await weave.close()
    process.exit(0)
  }
}
weave.on('thread-end', (end) => {
  say(`end ${end.id} ${end.status}`)
  void check()
})

say(`started resumed=${weave.resumed}`)
if (weave.journal.threads().length === 0) {
  const id = weave.spawn('actor', { every: Number(everyText), got: [], runs: 0 })
  weave.spawn('feeder', { to: id, count: Number(countText) })
} else await check()
