/**
 * The weave process of early-outcomes.test.ts's end case. Run it with
 *   node --conditions=raiment-source --import tsx test/support/early-end-child.ts DIR
 * It opens `DIR/weave.db` (durability 'sync'); on its first run it spawns `parent`, which takes a
 * message (an early outcome), spawns `child` with it without awaiting the spawn, and returns. The
 * spawn waits for the take to be durable. Lines: those of test/support/child-weave.ts.
 * RAIMENT_CRASH_AT=after-commit:1 kills it once the take's commit is durable.
 */
import { join } from 'node:path'
import { thread, Weave } from 'raiment'
import { superviseChild } from './child-weave.js'

const dir = process.argv[2]
if (!dir) throw new Error('usage: early-end-child.ts DIR')

const child = thread({
  uses: [],
  async does(p: unknown) {
    return p
  },
})

const parent = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const m = await this.mailbox.receive()
    this.threads.spawn('child', m).catch(() => {})
    return 'parent done'
  },
})

const weave = await Weave.open({ db: join(dir, 'weave.db'), durability: 'sync', threads: { parent, child }, ioLibs: false, dumps: false })
await superviseChild(weave, 2, () => {
  weave.send(weave.spawn('parent'), 'hello')
})
