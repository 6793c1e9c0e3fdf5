/**
 * A message a waiting receive took at once (no inbox row), whose thread stopped or was let go
 * before the take was recorded (the weft drops the outcome of a call answered after that): the
 * message goes back into the inbox under its number (src/inboxes.ts `#giveBack`). Killed, the
 * thread's inbox goes to the dead letters, this message with it; closed, the weave that opens the
 * journal next gives it to the resumed receive. (Before, it was nowhere: a `raiment send` and a
 * `raiment kill` answered in one poll told the sender "delivered" and lost it.)
 * Real SQLite files, weaves opened and closed in turn.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'

const listener = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive()
  },
})

const open = (file: string): Promise<Weave> => Weave.open({ db: file, durability: 'memory', threads: { listener }, ioLibs: false, dumps: false, passivateAfter: false })

/** A listener whose receive waits on its inbox. */
async function waiting(w: Weave): Promise<string> {
  const started = new Promise<void>((res) => w.once('thread-start', () => res()))
  const id = w.spawn('listener')
  await started
  await w.committed()
  return id
}

it('killed in the step that sent it: the message is a dead letter, not lost', async () => {
  const w = await open(join(tempDir('raiment-take-'), 'w.db'))
  try {
    const id = await waiting(w)
    expect(w.send(id, { x: 1 })).toEqual({ delivered: true, to: id })
    expect(w.kill(id)).toBe(true)
    expect(await w.join(id)).toMatchObject({ status: 'killed' })
    await w.committed()
    expect(w.journal.db.prepare('SELECT body FROM dead_letters WHERE recipient = ?').pluck().all(id)).toHaveLength(1)
    expect(w.journal.db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
  } finally {
    await w.close()
  }
})

it('closed in the step that sent it: the next weave gives it to the resumed receive', async () => {
  const file = join(tempDir('raiment-take-'), 'w.db')
  const w1 = await open(file)
  const id = await waiting(w1)
  expect(w1.send(id, { x: 2 })).toEqual({ delivered: true, to: id })
  await w1.close()
  const w2 = await open(file)
  try {
    expect(await w2.join(id)).toMatchObject({ status: 'done', result: { x: 2 } })
  } finally {
    await w2.close()
  }
})
