/**
 * The weave process of the continue-as-new crash test. Run it with
 *   node --conditions=raiment-source --import tsx test/support/continue-child.ts DIR COUNT EVERY
 * It opens `DIR/weave.db` (durability 'sync', resuming whatever was running); on its first run it
 * spawns an `actor` (test/support/continue-plan.ts) that continues as new every EVERY messages and
 * a `feeder` that sends it COUNT messages, then stop, and joins it, and a `monitorer` of it. It prints `started`, the `cfx`
 * library's progress lines (`tick <callId>`, `seen <n>`), `end <id> <status>` when a thread ends,
 * and `all-done` once all three have ended, then exits 0 (test/support/child-weave.ts).
 * RAIMENT_CRASH_AT makes it kill itself at a named crash point (src/crash-points.ts).
 */
import { join } from 'node:path'
import { Weave } from 'raiment'
import { say, superviseChild } from './child-weave.js'
import { actor, feeder, fxLibrary, monitorer } from './continue-plan.js'

const [dir, countText, everyText] = process.argv.slice(2)
if (!dir || !countText || !everyText) throw new Error('usage: continue-child.ts DIR COUNT EVERY')

const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { actor, feeder, monitorer },
  libraries: { cfx: fxLibrary(join(dir, 'effects.db'), say) },
  ioLibs: false,
  dumps: false,
})
await superviseChild(weave, 3, () => {
  const id = weave.spawn('actor', { every: Number(everyText), got: [], runs: 0 })
  weave.spawn('feeder', { to: id, count: Number(countText) })
  weave.spawn('monitorer', { target: id })
})
