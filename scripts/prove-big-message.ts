/**
 * Proof on the local broker: a message bigger than the broker's max_message_size, sent across
 * weaves, and one small message after it. Lowers the broker's limit to 1 MiB for the run and
 * restores it. Run: node --conditions=raiment-source --import tsx scripts/prove-big-message.ts
 * Before the fix: the small message never came (the relay published the big one again forever).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { thread, Weave } from '../src/index.js'
import { AmqpLink } from '../src/amqp/link.js'

const url = process.env['RAIMENT_TEST_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672'
const ctl = (expr: string): string => execFileSync('rabbitmqctl', ['eval', expr], { encoding: 'utf8' }).trim()
const old = ctl('application:get_env(rabbit, max_message_size).')
console.log('broker max_message_size before:', old)
const oldValue = /\{ok,(\d+)\}/.exec(old)?.[1] ?? '134217728'

const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string }) {
    const big = await this.mailbox.send(p.to, { big: 'x'.repeat(2 * 1024 * 1024) }).then((r) => r, (e: Error) => `refused: ${e.message}`)
    const small = await this.mailbox.send(p.to, { small: 1 })
    return { big, small }
  },
})
const sink = thread({
  uses: ['mailbox'],
  async does() {
    const m = await this.mailbox.receive<Record<string, unknown>>({ timeout: 20_000 })
    return m !== null && typeof m === 'object' && !('timedOut' in m) ? Object.keys(m) : 'timed out: nothing came'
  },
})

const dir = mkdtempSync(join(tmpdir(), 'raiment-big-'))
const ns = `prove-big-${Date.now()}`
const logs: string[] = []
const open = async (id: string) => {
  const link = await AmqpLink.connect({ url, namespace: ns, heartbeatMs: 100, log: (l) => logs.push(`${id}: ${l}`) })
  const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, ioLibs: false, dumps: false, durability: 'memory', threads: { sender, sink }, remote: link })
  await link.start(weave)
  return { link, weave }
}
try {
  ctl('application:set_env(rabbit, max_message_size, 1048576).')
  console.log('lowered to:', ctl('application:get_env(rabbit, max_message_size).'))
  // A channel takes the broker's limit when it opens: a's relay opens its own now.
  const a = await open('a')
  const b = await open('b')
  const to = b.weave.spawn('sink')
  const s = a.weave.spawn('sender', { to })
  console.log('sender:', JSON.stringify(await a.weave.join(s)).slice(0, 300))
  const end = await b.weave.join(to)
  console.log('sink (the small message should be there):', JSON.stringify(end).slice(0, 300))
  await Promise.race([a.link.outboxEmpty(), new Promise((resolve) => setTimeout(resolve, 5_000))])
  console.log('a outbox rows 5 s on (at most):', a.link.pending())
  console.log('a dead letters:', JSON.stringify(a.weave.journal.db.prepare('SELECT recipient, length(body) AS bytes, reason FROM dead_letters').all()))
  console.log('relay log lines:', logs.length, '\n ', logs.slice(0, 6).join('\n  '))
  await a.link.close(); await a.weave.close(); await b.link.close(); await b.weave.close()
} finally {
  ctl(`application:set_env(rabbit, max_message_size, ${oldValue}).`)
  console.log('restored:', ctl('application:get_env(rabbit, max_message_size).'))
}
