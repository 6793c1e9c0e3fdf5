/**
 * The weave process of the passivation crash test:
 *   node --conditions=raiment-source --import tsx test/support/passivate-child.ts DIR
 * Opens DIR/weave.db (durability 'sync', passivateAfter 0), spawns on the first run SLEEPERS
 * threads that sleep (6,000 ms + 300 ms each) and WAITERS threads that wait for a message, each of
 * which, once woken, makes one `mark.fired` call (printed `fired <thread> <what> <now>`). On later
 * runs it sends each waiter a message. Prints `started resumed=<n> running=<n> now=<ms>`,
 * `sleep-until <thread> <at>`, `asleep <thread>` once a passivation is durable,
 * `start <thread> <now>` for every run of a thread, `end <thread> <status>`, and `all-done`
 * (then exits 0) once every thread has ended.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { callContext, thread, Weave } from 'raiment'
import clock, { threadSide } from '../../io-libs/clock.js'

const dir = process.argv[2]
if (!dir) throw new Error('usage: passivate-child.ts DIR')
const say = (line: string): void => void writeSync(1, line + '\n')

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
let done = false
weave.on('thread-end', (end) => {
  say(`end ${end.id} ${end.status}`)
  if (!done && weave.journal.threads().every((r) => r.status !== 'running' && r.status !== 'pending')) {
    done = true
    say('all-done')
    void weave.close().then(() => process.exit(0))
  }
})
say(`started resumed=${weave.resumed} running=${weave.running} now=${Date.now()}`)
if (weave.journal.threads().length === 0) {
  for (let i = 0; i < SLEEPERS; i++) weave.spawn('sleeper', { ms: 6000 + 300 * i })
  for (let i = 0; i < WAITERS; i++) weave.spawn('waiter')
} else {
  for (const r of weave.journal.threads({ type: 'waiter' })) weave.send(r.id, `hello ${r.id}`)
}
