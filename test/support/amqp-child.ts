/**
 * A weave process of the broker storm test. Run it with
 *   node --conditions=raiment-source --import tsx test/support/amqp-child.ts DIR ID NS URL PEERS COUNT
 * It opens DIR/ID.db as weave ID joined to namespace NS, and on its first run spawns one storm
 * thread (ID/1) that sends COUNT messages to the storm thread of each peer weave (PEERS, comma
 * separated), interleaved, then receives as many from each and returns them by sender.
 * Lines: `ready`, `progress <i>` (a weft call, so each is printed once across restarts),
 * `done <json result>` once the thread has ended and the outbox is empty. SIGTERM closes it.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave, type ThreadEnd } from 'raiment'
import { AmqpLink } from '../../src/amqp/link.js'

const [dir, id, ns, url, peerList, countText] = process.argv.slice(2)
if (!dir || !id || !ns || !url || peerList === undefined || !countText) throw new Error('usage: amqp-child.ts DIR ID NS URL PEERS COUNT')
const say = (line: string): void => void writeSync(1, line + '\n')

declare module 'raiment' {
  interface Libraries {
    progress: { mark(i: number): Promise<void> }
  }
}

const storm = thread({
  uses: ['mailbox', 'threads', 'progress'],
  async does(p: { peers: string[]; count: number }) {
    const self = await this.threads.self()
    for (let i = 0; i < p.count; i++) {
      for (const peer of p.peers) await this.mailbox.send(peer, { from: self, i })
      if (i % 25 === 0) await this.progress.mark(i)
    }
    const got: Record<string, number[]> = {}
    for (let k = 0; k < p.count * p.peers.length; k++) {
      const m = (await this.mailbox.receive()) as { from: string; i: number }
      ;(got[m.from] ??= []).push(m.i)
    }
    return got
  },
})

const link = await AmqpLink.connect({ url, namespace: ns, heartbeatMs: 200, log: (l) => say(`log ${l}`) })
const weave = await Weave.open({
  db: join(dir, `${id}.db`),
  weaveId: id,
  durability: 'batched',
  threads: { storm },
  libraries: { progress: { mark: async (i: number) => say(`progress ${i}`) } },
  ioLibs: false,
  dumps: false,
  remote: link,
})
weave.on('error', (e) => say(`error ${e.message}`))
// The thread exists before the weave takes messages, which would otherwise go to the dead letters.
const mine = `${id}/1`
if (weave.journal.thread(mine) === undefined) {
  const peers = peerList.split(',').filter(Boolean).map((p) => `${p}/1`)
  const spawned = weave.spawn('storm', { peers, count: Number(countText) })
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
