/**
 * The weave process of the fork crash test:
 *   node --conditions=raiment-source --import tsx test/support/fork-child.ts DIR MODE [ID]
 * MODE `record`: runs an order that fails (the shop says it has no stock) and prints
 * `original <id>`. MODE `fork`: forks ID after its stock call, with a stock of 10 set, and prints
 * `fork <id>`; the fork's third shipment never answers here (the test kills the process then).
 * MODE `resume`: opens the journal again and prints `end <status> <json>` once thread ID ends.
 * Every live shipment prints `ship <call id>` as it starts.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { callContext, thread, Weave } from 'raiment'

const [dir, mode, id] = process.argv.slice(2)
if (!dir || !mode) throw new Error('usage: fork-child.ts DIR record|fork|resume [ID]')
const say = (line: string): void => void writeSync(1, line + '\n')

declare module 'raiment' {
  interface Libraries {
    shop: { stock(item: string): Promise<number>; ship(item: string, part: number): Promise<string> }
  }
}

const order = thread({
  uses: ['shop'],
  async does(p: { item: string; qty: number }) {
    const stock = await this.shop.stock(p.item)
    if (stock < p.qty) throw new Error(`out of stock: ${p.item}`)
    const parts: string[] = []
    for (let i = 0; i < 5; i++) parts.push(await this.shop.ship(p.item, i))
    return { stock, parts }
  },
})

const shop = {
  async stock(): Promise<number> {
    return 0
  },
  ship(item: string, part: number): Promise<string> {
    say(`ship ${callContext().callId}`)
    if (mode === 'fork' && part === 2) return new Promise(() => {})
    return Promise.resolve(`shipped ${item} ${part}`)
  },
}

const weave = await Weave.open({ db: join(dir, 'weave.db'), durability: 'sync', threads: { order }, libraries: { shop }, ioLibs: false, dumps: false })
weave.on('thread-end', (end) => say(`end ${end.status} ${JSON.stringify(end.status === 'done' ? end.result : end.status === 'failed' ? end.error.message : end)}`))
if (mode === 'record') {
  const orig = weave.spawn('order', { item: 'hat', qty: 1 })
  await weave.join(orig)
  say(`original ${orig}`)
} else if (mode === 'fork') {
  say(`fork ${weave.fork(id!, { at: 1, set: { 0: 10 } })}`)
  await new Promise(() => {})
} else {
  say(`resumed ${weave.resumed}`)
  await weave.join(id!)
}
await weave.close()
