// A replicated weave process of the failover benchmark (bench/failover.ts). Run it with
//   node --conditions=raiment-source --import tsx bench/failover-child.ts DIR ID NS URL TAKEOVER_MS N
// Weave ID on DIR/ID.db, durability 'replicated', heartbeat 1 s. With N > 0 it spawns N `ticker`
// threads on its first run: each loops `tick()` then a durable sleep of 1 s. Lines:
// `ready`, `ticking` once all N ticked twice (so each has a history in the journal), `took ID ENTRIES REBUILD_MS` when it has taken weave ID
// over, `running ID T` once every thread of weave ID taken over here has made a live call here
// (T: Date.now() then).
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { callContext, thread } from '../src/index.js'
import { ReplicatedHost } from '../src/replication/host.js'

const [dir, id, ns, url, takeoverText, nText] = process.argv.slice(2)
if (!dir || !id || !ns || !url || !takeoverText || nText === undefined) throw new Error('usage: failover-child.ts DIR ID NS URL TAKEOVER_MS N')
const say = (line: string): void => void writeSync(1, line + '\n')
const N = Number(nText)

declare module '../src/index.js' {
  interface Libraries {
    ticks: { tick(): Promise<void> }
  }
}

const ticker = thread({
  uses: ['ticks', 'clock'],
  async does() {
    for (;;) {
      await this.ticks.tick()
      await this.clock.sleepUntil((await this.clock.now()) + 1_000)
    }
  },
})

/** Threads that made a live call here, by weave; how many each weave has. */
const ticked = new Map<string, Set<string>>()
/** Ticks of this weave's own threads, by thread. */
const own = new Map<string, number>()
const expected = new Map<string, number>()
const told = new Set<string>()
const ticks = {
  tick: async (): Promise<void> => {
    const t = callContext().threadId
    const w = t.slice(0, t.lastIndexOf('/'))
    const set = ticked.get(w) ?? new Set<string>()
    ticked.set(w, set)
    const times = (own.get(t) ?? 0) + 1
    own.set(t, times)
    if (w !== id || times === 2) set.add(t)
    const want = expected.get(w)
    if (want !== undefined && set.size === want && !told.has(w)) {
      told.add(w)
      say(w === id ? 'ticking' : `running ${w} ${Date.now()}`)
    }
  },
}

const host = await ReplicatedHost.start({
  url,
  namespace: ns,
  takeoverAfterMs: Number(takeoverText),
  log: () => {},
  weave: { db: join(dir, `${id}.db`), weaveId: id, durability: 'replicated', threads: { ticker }, libraries: { ticks }, ioLibs: false, dumps: false },
  fenced: (err) => {
    say(`fenced ${err.message}`)
    process.exit(3)
  },
  opened: (weave, own) => {
    const running = weave.journal.threads({ status: ['running'] }).length
    if (own) {
      expected.set(id, N)
      if (running === 0) for (let i = 0; i < N; i++) weave.spawn('ticker', {})
    } else expected.set(weave.journal.weaveId, running)
  },
  tookOver: (taken, info) => say(`took ${taken} ${info.entries} ${info.rebuildMs}`),
})
if (N === 0) expected.set(id, 0)
process.on('SIGTERM', () => void host.close().then(() => process.exit(0)))
say('ready')
