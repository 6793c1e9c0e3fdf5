/**
 * The weave process of continue-crash.test.ts's pending-take case. Run it with
 *   node --conditions=raiment-source --import tsx test/support/continue-pending-child.ts DIR
 * It opens `DIR/weave.db` (durability 'sync'); on its first run it spawns `leaves`, whose first run
 * leaves a receive pending, waits on a gate, and continues as new once the gate opens. The gate
 * opens and a message is sent in one turn, so the gate's outcome and the take of the message are
 * recorded in one commit, the gate's first: the take is recorded and not yet released when the
 * run continues. The new run receives a message (1.5 s at most) and ends with it, or with
 * 'TIMED_OUT'. Lines: those of test/support/child-weave.ts, and `result <json>` at its end.
 * RAIMENT_CRASH_AT=continue-queued:1 kills it as the switch is queued (src/crash-points.ts).
 */
import { join } from 'node:path'
import { thread, Weave } from 'raiment'
import { say, superviseChild } from './child-weave.js'

declare module 'raiment' {
  interface Libraries {
    pendingGate: { wait(): Promise<string> }
  }
}

const dir = process.argv[2]
if (!dir) throw new Error('usage: continue-pending-child.ts DIR')

let open: () => void = () => {}
let called: () => void = () => {}
const waiting = new Promise<void>((resolve) => (called = resolve))
const pendingGate = {
  default: {
    wait: () =>
      new Promise<string>((resolve) => {
        open = () => resolve('open')
        called()
      }),
  },
}

const leaves = thread({
  uses: ['mailbox', 'threads', 'pendingGate'],
  async does(p: { runs: number }) {
    if (p.runs === 0) {
      // Left pending: it takes the message in the commit of the gate's outcome, after it.
      this.mailbox.receive().catch(() => {})
      await this.pendingGate.wait()
      return this.threads.continueAsNew({ runs: 1 })
    }
    const m = await this.mailbox.receive({ timeout: 1_500 })
    return typeof m === 'symbol' ? 'TIMED_OUT' : m
  },
})

const weave = await Weave.open({ db: join(dir, 'weave.db'), durability: 'sync', threads: { leaves }, libraries: { pendingGate }, ioLibs: false, dumps: false })
weave.on('thread-end', (end) => say(`result ${JSON.stringify(end.status === 'done' ? end.result : end.status)}`))
await superviseChild(weave, 1, () => {
  const id = weave.spawn('leaves', { runs: 0 })
  void waiting.then(() => {
    open()
    weave.send(id, { m: 1 })
  })
})
