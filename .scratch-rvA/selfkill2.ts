import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'

const selfKiller = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const me = await this.threads.self()
    await this.mailbox.receive()           // early outcome
    this.threads.kill(me).catch(() => {})  // held; now started inside Weft.finish()
    return 'done'
  },
})
const parent = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const c = await this.threads.spawn('selfKiller')
    await this.threads.monitor(c)
    const got = [await this.mailbox.receive({ timeout: 1000 }), await this.mailbox.receive({ timeout: 300 })]
    return got.map((m) => (typeof m === 'symbol' ? 'timeout' : m))
  },
})
const dir = mkdtempSync(join(tmpdir(), 'rvA-'))
const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { selfKiller, parent }, ioLibs: false, dumps: false })
const ends: string[] = []
weave.on('thread-end', (e: any) => ends.push(`${e.id}:${e.status}`))
const pid = weave.spawn('parent')
await new Promise((r) => setTimeout(r, 200))
const cid = weave.journal.threads().find((t: any) => t.type === 'selfKiller')!.id
const joined = weave.join(cid)
weave.send(cid, 'go')
const j = await joined
const p = await weave.join(pid)
await weave.committed()
console.log(JSON.stringify({ joinerSaw: j.status, parentMailbox: (p as any).result, threadEndEvents: ends, row: weave.journal.thread(cid)!.status }))
await weave.close()
