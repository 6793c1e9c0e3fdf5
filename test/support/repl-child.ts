/**
 * A replicated weave process of the host-loss tests. Run it with
 *   node --conditions=raiment-source --import tsx test/support/repl-child.ts DIR ID NS URL PEERS COUNT STEPS EFFECTS_URL
 * It runs weave ID on DIR/ID.db, replicated (durability 'replicated', or REPL_DURABILITY) through the broker at URL,
 * namespace NS, taking over the weaves of NS that stop heartbeating (REPL_TAKEOVER_MS, default
 * 1500; heartbeat every 100 ms). On its first run weave ID spawns three threads:
 * - ID/1 `storm`: sends COUNT messages by id to `<peer>/1` of each peer (PEERS, comma separated),
 *   interleaved, then receives as many from each; returns them by sender;
 * - ID/2 `storm`: the same by name (it registers `storm-ID`, sends to `storm-<peer>`);
 * - ID/3 `saga`: STEPS calls of `effects.charge(item)`, a POST to EFFECTS_URL with the call id as
 *   its Idempotency-Key, a durable sleep of 5 ms after each; returns the answers;
 * - with REPL_WAITER_MS set, ID/4 `waiter`: a durable sleep of that long, then returns 'woke'.
 * REPL_TYPES (comma separated) limits the thread types it runs (a weave of another app).
 * Lines: `ready ID`, `progress ID i` (a weft call: once per send i % 10 == 0), `took WEAVE` (it
 * runs here now), `handed WEAVE` (given back to a process that started it again), `done THREAD
 * JSON` when a thread ends in this process (own or hosted weave) and for every thread already
 * ended in a journal taken over, `opened WEAVE DURABILITY` as each weave opens here, `fenced LINE`
 * before exiting 3.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { callContext, thread, type Durability, type ThreadEnd, type Weave } from 'raiment'
import { rowEnd } from '../../src/weave.js'
import { ReplicatedHost } from '../../src/replication/host.js'

const [dir, id, ns, url, peerList, countText, stepsText, effectsUrl] = process.argv.slice(2)
if (!dir || !id || !ns || !url || peerList === undefined || !countText || !stepsText || !effectsUrl) throw new Error('usage: repl-child.ts DIR ID NS URL PEERS COUNT STEPS EFFECTS_URL')
const say = (line: string): void => void writeSync(1, line + '\n')
const peers = peerList.split(',').filter(Boolean)

declare module 'raiment' {
  interface Libraries {
    lossProgress: { mark(weave: string, i: number): Promise<void> }
    effects: { charge(item: string): Promise<string> }
  }
}

const storm = thread({
  uses: ['mailbox', 'threads', 'lossProgress', 'registry'],
  async does(p: { to: string[]; count: number; name?: string; weave: string }) {
    const self = await this.threads.self()
    if (p.name !== undefined) {
      await this.registry.register(p.name)
      // Until every peer's name is known here, a send by name would rightly be a dead letter.
      await this.lossProgress.mark(p.weave, -1)
    }
    for (let i = 0; i < p.count; i++) {
      for (const to of p.to) await this.mailbox.send(to, { from: self, i })
      if (i % 10 === 0) await this.lossProgress.mark(p.weave, i)
    }
    const got: Record<string, number[]> = {}
    for (let k = 0; k < p.count * p.to.length; k++) {
      const m = await this.mailbox.receive<{ from: string; i: number }>()
      ;(got[m.from] ??= []).push(m.i)
    }
    return got
  },
})

const saga = thread({
  uses: ['effects', 'clock'],
  async does(p: { items: string[] }) {
    const out: string[] = []
    for (const item of p.items) {
      out.push(await this.effects.charge(item))
      await this.clock.sleepUntil((await this.clock.now()) + 5)
    }
    return out
  },
})

const waiter = thread({
  uses: ['clock'],
  async does(p: { ms: number }) {
    await this.clock.sleep(p.ms)
    return 'woke'
  },
})

const libraries = {
  lossProgress: {
    mark: async (weave: string, i: number) => {
      // No event says a peer's announcement has arrived: look, as a test would with vi.waitFor.
      while (i === -1 && !peers.every((p) => known(`storm-${p}`))) await new Promise((r) => setTimeout(r, 20))
      say(`progress ${weave} ${i}`)
    },
  },
  effects: {
    charge: async (item: string): Promise<string> => {
      const key = callContext().callId
      for (;;) {
        try {
          const res = await fetch(effectsUrl, { method: 'POST', headers: { 'Idempotency-Key': key, 'content-type': 'application/json' }, body: JSON.stringify({ item }) })
          if (res.ok) return ((await res.json()) as { charged: string }).charged
        } catch {
          // the service is there for the whole test; a refused connection is retried
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    },
  },
}

/** Does this process's own weave know which thread holds `name`? */
const known = (name: string): boolean => {
  if (started === null) return false // still opening: the thread asks again
  const found = started.link.resolveName(name)
  return found !== null && found !== 'unknown'
}

const report = (weave: Weave): void => {
  weave.on('thread-end', (end: ThreadEnd) => say(`done ${end.id} ${JSON.stringify(end.status === 'done' ? end.result : end)}`))
}

/** The types REPL_TYPES names, or all. */
function runsTypes<T extends Record<string, unknown>>(all: T): Partial<T> {
  const only = process.env['REPL_TYPES']?.split(',')
  return only === undefined ? all : Object.fromEntries(Object.entries(all).filter(([k]) => only.includes(k))) as Partial<T>
}

let started: ReplicatedHost | null = null
const host = await ReplicatedHost.start({
  url,
  namespace: ns,
  heartbeatMs: 100,
  takeoverAfterMs: Number(process.env['REPL_TAKEOVER_MS'] ?? 1_500),
  log: (l) => say(`log ${l}`),
  weave: { db: join(dir, `${id}.db`), weaveId: id, durability: (process.env['REPL_DURABILITY'] ?? 'replicated') as Durability, threads: runsTypes({ storm, saga, waiter }), libraries, ioLibs: false, dumps: false },
  fenced: (err) => {
    say(`fenced raiment: ${err.code}: ${err.message}`)
    process.exit(3)
  },
  opened: (weave, own) => {
    report(weave)
    say(`opened ${weave.journal.weaveId} ${String(weave.config.durability)}`)
    if (!own) {
      // Threads that ended before the loss (their end may not have been printed by the lost process).
      for (const r of weave.journal.threads({ status: ['done'] })) {
        const end = rowEnd(r)
        if (end?.status === 'done') say(`done ${r.id} ${JSON.stringify(end.result)}`)
      }
    } else if (weave.journal.thread(`${id}/1`) === undefined) {
      // The threads exist before the weave takes messages, which would otherwise be dead letters.
      weave.spawn('storm', { to: peers.map((p) => `${p}/1`), count: Number(countText), weave: id })
      weave.spawn('storm', { to: peers.map((p) => `storm-${p}`), count: Number(countText), name: `storm-${id}`, weave: id })
      weave.spawn('saga', { items: Array.from({ length: Number(stepsText) }, (_, i) => `${id}-${i}`) })
      const waitMs = process.env['REPL_WAITER_MS']
      if (waitMs !== undefined) weave.spawn('waiter', { ms: Number(waitMs) })
    }
  },
  tookOver: (taken) => say(`took ${taken}`),
  handedBack: (given) => say(`handed ${given}`),
})
started = host
// SIGUSR2: what each weave here holds (for a test that did not finish).
process.on('SIGUSR2', () => {
  for (const w of [host.weave, ...host.hosted.values()]) {
    const count = (t: string): number => (w.journal.db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n
    const running = w.journal.threads({ status: ['running'] }).map((r) => r.id)
    for (const d of w.journal.db.prepare('SELECT sender, recipient, reason, body FROM dead_letters').all()) say(`dead ${w.journal.weaveId} ${JSON.stringify(d)}`)
    say(`state ${w.journal.weaveId} running=${running.join(',')} inbox=${count('inbox')} outbox=${count('outbox')} outbox_names=${count('outbox_names')} dead=${count('dead_letters')} names=${JSON.stringify(w.messages.names())}`)
  }
})
process.on('SIGTERM', () => void host.close().then(() => process.exit(0)))
say(`ready ${id}`)
