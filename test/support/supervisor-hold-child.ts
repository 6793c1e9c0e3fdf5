/**
 * The weave process of the supervisor-hold crash test:
 *   node --conditions=raiment-source --import tsx test/support/supervisor-hold-child.ts DIR
 * First run: spawns a `raiment/supervisor` of one transient worker, `hw`, which registers the name
 * `hw` and waits for `{ go }` before it receives; it is sent `{ fail }`, then BACKLOG messages, then
 * `{ go }`: it fails with them unread. Once its end is committed, AFTER more messages are sent to
 * `hw` during the supervisor's back-off (BACKOFF_MS), and once they are committed it prints
 * `sent <ids>` (the test kills it then, during the back-off). Each message a worker receives is
 * appended to DIR/got (outside the journal). Second run (resumed): once the restarted worker
 * holds the name it is sent `{ go }`; once DIR/got holds every message, `{ stop }`; at the
 * supervisor's end it prints `end <status> dead=<n> got=<json>` and exits 0.
 */
import { appendFileSync, existsSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'

declare module 'raiment' {
  interface Libraries {
    holdGot: { got(m: unknown): Promise<number> }
  }
}

const BACKOFF_MS = 2000
const BACKLOG = 5
const AFTER = 5

const dir = process.argv[2]
if (!dir) throw new Error('usage: supervisor-hold-child.ts DIR')
const say = (line: string): void => void writeSync(1, line + '\n')
const gotFile = join(dir, 'got')
const got = (): unknown[] => (existsSync(gotFile) ? readFileSync(gotFile, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown) : [])

let onGot: (() => void) | null = null
const holdGot = {
  async got(m: unknown): Promise<number> {
    appendFileSync(gotFile, JSON.stringify(m) + '\n')
    onGot?.()
    return got().length
  },
}

const hw = thread({
  uses: ['mailbox', 'registry', 'holdGot'],
  async does() {
    await this.registry.register('hw')
    await this.mailbox.receive({ match: { go: true } })
    for (;;) {
      const m = await this.mailbox.receive<{ fail: true } | { stop: true } | { i: number }>()
      if ('fail' in m) throw new Error('hw fails on purpose')
      if ('stop' in m) return 'stopped'
      await this.holdGot.got(m)
    }
  },
})

const first = !existsSync(join(dir, 'weave.db'))
const weave = await Weave.open({ db: join(dir, 'weave.db'), durability: 'sync', threads: { hw }, libraries: { holdGot }, ioLibs: false, dumps: false })

/** Resolves once worker number `n` (1 = the first) holds the name. */
async function holding(n: number): Promise<string> {
  for (;;) {
    const ids = weave.journal.threads({ type: 'hw' }).map((t) => t.id)
    const id = weave.messages.whereis('hw')
    if (ids.length >= n && id === ids[n - 1]) return id
    await weave.committed()
    await new Promise((r) => setImmediate(r))
  }
}

const send = (m: unknown): void => {
  const r = weave.send('hw', m)
  if (!r.delivered) say(`not-delivered ${JSON.stringify(r)}`)
}

if (first) {
  weave.spawn('raiment/supervisor', { children: [{ type: 'hw', restart: 'transient' }], backoff: { initial: BACKOFF_MS, factor: 1, max: BACKOFF_MS } })
  const w1 = await holding(1)
  const failed = new Promise<void>((resolve) => weave.on('thread-end', (e) => e.id === w1 && resolve()))
  send({ fail: true })
  for (let i = 0; i < BACKLOG; i++) send({ i })
  send({ go: true })
  await failed
  for (let i = BACKLOG; i < BACKLOG + AFTER; i++) send({ i })
  await weave.committed()
  say(`sent ${BACKLOG + AFTER}`)
} else {
  say(`started resumed=${weave.resumed}`)
  const all = new Promise<void>((resolve) => {
    onGot = () => {
      if (got().length >= BACKLOG + AFTER) resolve()
    }
    onGot()
  })
  const sup = weave.journal.threads({ type: 'raiment/supervisor' })[0]!.id
  await holding(2)
  send({ go: true })
  await all
  send({ stop: true })
  const end = await weave.join(sup)
  await weave.committed()
  const dead = weave.journal.db.prepare('SELECT count(*) FROM dead_letters').pluck().get() as number
  say(`end ${end.status} dead=${dead} got=${JSON.stringify(got())}`)
  await weave.close()
  process.exit(0)
}
