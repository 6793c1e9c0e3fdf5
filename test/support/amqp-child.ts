/**
 * A weave process of the broker storm tests. Run it with
 *   node --conditions=raiment-source --import tsx test/support/amqp-child.ts DIR ID NS URL PEERS COUNT [BY]
 * It opens DIR/ID.db as weave ID joined to namespace NS, and on its first run spawns one storm
 * thread (ID/1) that sends COUNT messages to the storm thread of each peer weave (PEERS, comma
 * separated), interleaved, then receives as many from each and returns them by sender (thread id).
 * BY is `id` (default: it sends to `<peer>/1`) or `name` (it registers the name `storm-ID` first,
 * and sends to `storm-<peer>`).
 * Lines: `ready`, `progress <i>` (a weft call, so each is printed once across restarts),
 * `done <json result>` once the thread has ended and the outbox is empty. SIGTERM closes it.
 * With STORM_HOLD=i,j,… in its environment, the thread stops after `progress i` until the line
 * `go` arrives on stdin; i = -1 is before its first send, and `progress -1` comes only once this
 * weave knows where every peer's name is (by name; the storm would otherwise start before the
 * weaves have heard of each other, and a name no weave has announced is rightly a dead letter).
 */
import { createInterface } from 'node:readline'
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave, type ThreadEnd } from 'raiment'
import { AmqpLink } from '../../src/amqp/link.js'

const [dir, id, ns, url, peerList, countText, by = 'id'] = process.argv.slice(2)
if (!dir || !id || !ns || !url || peerList === undefined || !countText || (by !== 'id' && by !== 'name')) throw new Error('usage: amqp-child.ts DIR ID NS URL PEERS COUNT [id|name]')
const say = (line: string): void => void writeSync(1, line + '\n')
const peerIds = peerList.split(',').filter(Boolean)
const holds = new Set((process.env['STORM_HOLD'] ?? '').split(',').filter(Boolean).map(Number))
/** Resolvers of the holds waiting for a `go` line, in order. */
const gos: Array<() => void> = []
if (holds.size > 0) createInterface({ input: process.stdin }).on('line', (l) => l === 'go' && gos.shift()?.())

declare module 'raiment' {
  interface Libraries {
    progress: { mark(i: number): Promise<void> }
  }
}

const storm = thread({
  uses: ['mailbox', 'threads', 'progress', 'registry'],
  async does(p: { peers: string[]; count: number; name?: string }) {
    const self = await this.threads.self()
    if (p.name !== undefined) await this.registry.register(p.name)
    if (holds.has(-1)) await this.progress.mark(-1)
    for (let i = 0; i < p.count; i++) {
      for (const peer of p.peers) await this.mailbox.send(peer, { from: self, i })
      if (i % 25 === 0 || holds.has(i)) await this.progress.mark(i)
    }
    const got: Record<string, number[]> = {}
    for (let k = 0; k < p.count * p.peers.length; k++) {
      const m = await this.mailbox.receive<{ from: string; i: number }>()
      ;(got[m.from] ??= []).push(m.i)
    }
    return got
  },
})

const link = await AmqpLink.connect({ url, namespace: ns, heartbeatMs: 200, log: (l) => say(`log ${l}`) })
/** Does this weave know which thread holds `name`? */
const known = (name: string): boolean => {
  const found = link.resolveName(name)
  return found !== null && found !== 'unknown'
}
const weave = await Weave.open({
  db: join(dir, `${id}.db`),
  weaveId: id,
  durability: 'batched',
  threads: { storm },
  libraries: {
    progress: {
      mark: async (i: number) => {
        // No event says a peer's announcement has arrived: look, as a test would with vi.waitFor.
        while (i === -1 && by === 'name' && !peerIds.every((p) => known(`storm-${p}`))) {
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
        say(`progress ${i}`)
        if (holds.has(i)) await new Promise<void>((resolve) => gos.push(resolve))
      },
    },
  },
  ioLibs: false,
  dumps: false,
  remote: link,
})
weave.on('error', (e) => say(`error ${e.message}`))
// The thread exists before the weave takes messages, which would otherwise go to the dead letters.
const mine = `${id}/1`
if (weave.journal.thread(mine) === undefined) {
  const peers = by === 'name' ? peerIds.map((p) => `storm-${p}`) : peerIds.map((p) => `${p}/1`)
  const spawned = weave.spawn('storm', { peers, count: Number(countText), ...(by === 'name' ? { name: `storm-${id}` } : {}) })
  if (spawned !== mine) throw new Error(`expected the storm thread to be ${mine}, got ${spawned}`)
}
await link.start(weave)
process.on('SIGTERM', () => {
  void link.close().then(() => weave.close()).then(() => process.exit(0))
})
say('ready')

const report = async (end: ThreadEnd): Promise<void> => {
  await link.outboxEmpty()
  say(`done ${JSON.stringify(end.status === 'done' ? end.result : end)}`)
}
void weave.join(mine).then(report)
