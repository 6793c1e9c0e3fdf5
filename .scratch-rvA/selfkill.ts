import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'

const ping = { async ping(): Promise<string> { return 'pong' } }

const selfKiller = thread({
  uses: ['mailbox', 'threads', 'ping'],
  async does(p: { early: boolean }) {
    const me = await this.threads.self()
    if (p.early) await this.mailbox.receive()
    else await this.ping.ping()
    this.threads.kill(me).catch(() => {})
    return 'done'
  },
})
const worker = thread({ uses: ['mailbox'], async does() { return await this.mailbox.receive() } })
const supervisor = thread({
  uses: ['mailbox', 'threads', 'ping'],
  async does(p: { early: boolean }) {
    const w = await this.threads.spawn('worker')
    await this.threads.link(w)
    if (p.early) await this.mailbox.receive()
    else await this.ping.ping()
    this.threads.kill(w).catch(() => {})
    return 'done'
  },
})
const parent = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { child: string; early: boolean }) {
    const c = await this.threads.spawn(p.child, { early: p.early })
    if (p.early) { await this.mailbox.receive({ timeout: 100 }) }
    const got: unknown[] = []
    for (;;) {
      const m = await this.mailbox.receive({ timeout: 500 })
      if (typeof m === 'symbol' || m === undefined || (m as any) === null) break
      if (typeof m === 'object' && m !== null && 'exit' in m) got.push(m)
      else break
    }
    return { c, got }
  },
})

for (const child of ['selfKiller', 'supervisor']) {
  for (const early of [false, true]) {
    const dir = mkdtempSync(join(tmpdir(), 'rvA-'))
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { selfKiller, supervisor, worker, parent }, libraries: { ping }, ioLibs: false, dumps: false })
    const ends: string[] = []
    weave.on('thread-end', (e: any) => ends.push(`${e.type}:${e.status}`))
    let errs: unknown[] = []
    process.on('uncaughtException', (e) => errs.push(e))
    const pid = weave.spawn('parent', { child, early })
    await weave.committed()
    await new Promise((r) => setTimeout(r, 100))
    // send a message to the child (id is next after parent)
    const rows = () => weave.journal.threads().map((t: any) => `${t.id}:${t.type}:${t.status}`)
    const childRow = weave.journal.threads().find((t: any) => t.type === child)!
    if (early) weave.send(childRow.id, 'go')
    const end = await weave.join(pid)
    await weave.committed()
    console.log(JSON.stringify({ child, early, parentResult: (end as any).result?.got, ends, rows: rows(), errs: errs.map(String) }))
    await weave.close()
  }
}
