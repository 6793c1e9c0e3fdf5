/**
 * The weave process of the retry fencing test:
 *   node --conditions=raiment-source --import tsx test/support/retry-fence-child.ts DIR NS URL SERVICE BACKOFF_MS
 * It runs replicated weave `a` on DIR/a.db (durability 'replicated', a ReplicatedHost on the
 * broker at URL, namespace NS, taken over after 1 s of silence), whose one thread `pay` charges
 * through the service at SERVICE (test/support/retry-fence.ts), retrying after BACKOFF_MS. Lines:
 * `pid PID` first; `attempt` as each attempt starts (before its request); `backoff` once the failed first attempt is recorded (in the stream) and its wait begun;
 * `fenced CODE` before it exits 3.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { ReplicatedHost } from '../../src/replication/host.js'
import { pendingRetryWaits } from '../../src/retry/run.js'
import { chargesVia, payType } from './retry-fence.js'

const [dir, ns, url, service, backoff] = process.argv.slice(2)
if (!dir || !ns || !url || !service || !backoff) throw new Error('usage: retry-fence-child.ts DIR NS URL SERVICE BACKOFF_MS')
const say = (line: string): void => void writeSync(1, line + '\n')
say(`pid ${process.pid}`)

const host = await ReplicatedHost.start({
  url,
  namespace: ns,
  heartbeatMs: 100,
  takeoverAfterMs: 1000,
  log: () => {},
  weave: { db: join(dir, 'a.db'), weaveId: 'a', durability: 'replicated', threads: { pay: payType(Number(backoff)) }, libraries: { charges: chargesVia(service, () => say('attempt')) }, ioLibs: false, dumps: false, passivateAfter: false },
  fenced: (err) => {
    say(`fenced ${err.code}`)
    process.exit(3)
  },
})
host.weave.spawn('pay')
// No event says the wait began (its row released first): look at the count of waits.
const look = setInterval(() => {
  if (pendingRetryWaits() === 0) return
  clearInterval(look)
  say('backoff')
}, 10)
