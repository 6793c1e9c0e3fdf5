/**
 * The weave process of the crash test. Run it with
 *   node --conditions=raiment-source --import tsx test/support/crash-child.ts DIR
 * where DIR holds `plans.json` (one plan per worker thread). It opens `DIR/weave.db` with
 * durability 'sync' (resuming whatever was running), spawns the workers on the first run, and
 * prints one line per event: `call <callId>` and `done <callId>` from the library (progress
 * lines), `end <threadId>` when a thread ends, `all-done` when every worker has, then exits 0.
 * RAIMENT_CRASH_AT in its environment makes it kill itself at a named point of the weft.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Weave } from 'raiment'
import { say, superviseChild } from './child-weave.js'
import { fxLibrary, worker, type Plan } from './crash-plan.js'

const dir = process.argv[2]
if (!dir) throw new Error('usage: crash-child.ts DIR')

const plans = JSON.parse(readFileSync(join(dir, 'plans.json'), 'utf8')) as Plan[]
const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { worker },
  libraries: { fx: fxLibrary(join(dir, 'effects.db'), say) },
  ioLibs: false,
  dumps: false,
})
await superviseChild(weave, plans.length, () => {
  for (const plan of plans) weave.spawn('worker', { plan })
})
