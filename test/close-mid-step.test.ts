/**
 * A weave closed while a thread is in the middle of a step (its library call has queued a side
 * write, a monitor's watch row, and its entry is queued a microtask later): the close commits
 * neither half alone. Before, the close detached the thread between the two and committed the
 * watch row without the entry: the next weave ran the monitor again live, and its watcher was
 * told of the target's end twice (the second notice went to the dead letters). Real SQLite file,
 * weaves opened in turn, the CLI's kill while none runs.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { thread, TIMED_OUT, Weave } from 'raiment'
import { killThread } from '../src/cli/weave-commands.js'
import { tempDir } from './support/tmp.js'

/** Closes the weave from inside a step of the watcher, in the microtask its call began in. */
let closeNow: (() => void) | null = null

const target = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive({ match: { never: true } })
  },
})

const watcher = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { of: string }) {
    const watching = this.threads.monitor(p.of)
    closeNow?.()
    await watching
    const first = await this.mailbox.receive()
    const second = await this.mailbox.receive({ timeout: 300 })
    return [first, second === TIMED_OUT ? 'none' : second]
  },
})

const open = (file: string): Promise<Weave> => Weave.open({ db: file, durability: 'memory', threads: { target, watcher }, ioLibs: false, dumps: false, passivateAfter: false, pollMs: 10 })

it('a close in the middle of a step commits neither half of it alone: the watcher is told of the end once', async () => {
  const file = join(tempDir('raiment-close-mid-step-'), 'w.db')
  const w1 = await open(file)
  const t = w1.spawn('target')
  await w1.committed()
  // Resolves once the close, begun inside the watcher's step, has ended.
  const closed = new Promise<void>((res) => {
    closeNow = () => {
      closeNow = null
      res(w1.close())
    }
  })
  const m = w1.spawn('watcher', { of: t })
  await closed

  expect(await killThread(file, t)).toMatchObject({ killed: true })
  const w2 = await open(file)
  try {
    expect(await w2.join(m)).toMatchObject({ status: 'done', result: [{ exit: t, status: 'killed' }, 'none'] })
    await w2.committed()
    expect(w2.journal.db.prepare('SELECT recipient, body FROM dead_letters WHERE recipient = ?').all(m)).toEqual([])
  } finally {
    await w2.close()
  }
})
