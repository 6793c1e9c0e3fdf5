/**
 * The weave process of the supervisor's back-off crash test:
 *   node --conditions=raiment-source --import tsx test/support/supervisor-child.ts DIR
 * On its first run it spawns a `raiment/supervisor` of one transient child, `once`, with a
 * back-off of BACKOFF_MS; `once` fails on its first start and ends done on its second (it counts
 * its starts in DIR/starts, outside the journal). It prints `started resumed=<n>`, then
 * `child-start <n> <now>` at each start of `once`, `backoff-until <deadline> <now>` when the
 * supervisor waits with a deadline (the built-in mailbox, except that `peek` with a deadline
 * first prints that line), and `end <status> <json>` when the supervisor ends, then exits 0.
 */
import { appendFileSync, existsSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave, type WeaveConfig } from 'raiment'
import mailbox, { threadSide } from '../../io-libs/mailbox.js'

declare module 'raiment' {
  interface Libraries {
    starts: { next(): Promise<number> }
  }
}

const BACKOFF_MS = 1500

const dir = process.argv[2]
if (!dir) throw new Error('usage: supervisor-child.ts DIR')
/** Synchronous, so a line is out before anything that follows it (a SIGKILL included). */
const say = (line: string): void => void writeSync(1, line + '\n')

const once = thread({
  uses: ['starts'],
  async does() {
    const n = await this.starts.next()
    if (n === 1) throw new Error('the first start fails')
    return n
  },
})

const starts = {
  async next(): Promise<number> {
    const file = join(dir, 'starts')
    appendFileSync(file, 'x')
    const n = readFileSync(file, 'utf8').length
    say(`child-start ${n} ${Date.now()}`)
    return n
  },
}

const announcing = (config: WeaveConfig) => {
  const m = mailbox(config)
  return {
    ...m,
    peek(after: number, until?: number) {
      if (until !== undefined) say(`backoff-until ${until} ${Date.now()}`)
      return m.peek(after, until)
    },
  }
}

const first = !existsSync(join(dir, 'weave.db'))
const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { once },
  libraries: { starts, mailbox: { default: announcing, threadSide } },
  ioLibs: false,
  dumps: false,
})
weave.on('thread-end', (end) => {
  if (end.type !== 'raiment/supervisor') return
  say(`end ${end.status} ${JSON.stringify(end.status === 'done' ? end.result : end)}`)
  void weave.close().then(() => process.exit(0))
})
say(`started resumed=${weave.resumed}`)
if (first) weave.spawn('raiment/supervisor', { children: [{ type: 'once', restart: 'transient' }], backoff: { initial: BACKOFF_MS } })
