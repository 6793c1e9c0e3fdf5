/**
 * The weave process of the passivation crash test:
 *   node --conditions=raiment-source --import tsx test/support/passivate-child.ts DIR
 * Opens DIR/weave.db (durability 'sync', passivateAfter 0), spawns on the first run SLEEPERS
 * threads that sleep (6,000 ms + 300 ms each) and WAITERS threads that wait for a message, each of
 * which, once woken, makes one `mark.fired` call (printed `fired <thread> <what> <now>`). On later
 * runs it sends each waiter a message. Prints `opened running=<n> now=<ms>`, then (test/support/child-weave.ts) `started resumed=<n>`,
 * `sleep-until <thread> <at>`, `asleep <thread>` once a passivation is durable,
 * `start <thread> <now>` for every run of a thread, `end <thread> <status>`, and `all-done`
 * (then exits 0) once every thread has ended.
 */
import { join } from 'node:path'
import { callContext, thread, Weave } from 'raiment'
import clockLib, { threadSide } from '../../io-libs/clock.js'

/** The clock library as a weave on the real clock makes it. */
const clock = clockLib({ db: '', weaveId: 'child' })
import { say, superviseChild } from './child-weave.js'

const dir = process.argv[2]
if (!dir) throw new Error('usage: passivate-child.ts DIR')

export const SLEEPERS = 4
export const WAITERS = 3

declare module 'raiment' {
  interface Libraries {
    mark: { fired(what: string): Promise<void> }
  }
}

const sleeper = thread({
  uses: ['clock', 'mark'],
  async does(p: { ms: number }) {
    await this.clock.sleep(p.ms)
    await this.mark.fired('slept')
    return 'slept'
  },
})

const waiter = thread({
  uses: ['mailbox', 'mark'],
  async does() {
    const m = await this.mailbox.receive<string>()
    await this.mark.fired(String(m))
    return m
  },
})

const announcing = {
  now: () => clock.now(),
  sleepUntil(at: number): Promise<void> {
    say(`sleep-until ${callContext().threadId} ${at}`)
    return clock.sleepUntil(at)
  },
}

const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { sleeper, waiter },
  libraries: {
    clock: { default: announcing, threadSide },
    mark: {
      async fired(what: string): Promise<void> {
        say(`fired ${callContext().threadId} ${what} ${Date.now()}`)
      },
    },
  },
  passivateAfter: 0,
  dumps: false,
})
weave.on('thread-passivated', (e) => void weave.committed().then(() => say(`asleep ${e.id}`)))
weave.on('thread-start', (e) => say(`start ${e.id} ${Date.now()}`))
say(`opened running=${weave.running} now=${Date.now()}`)
const first = weave.journal.threads().length === 0
await superviseChild(weave, SLEEPERS + WAITERS, () => {
  for (let i = 0; i < SLEEPERS; i++) weave.spawn('sleeper', { ms: 6000 + 300 * i })
  for (let i = 0; i < WAITERS; i++) weave.spawn('waiter')
})
if (!first) for (const r of weave.journal.threads({ type: 'waiter' })) weave.send(r.id, `hello ${r.id}`)
