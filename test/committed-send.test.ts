/**
 * `weave.committed()` after `weave.send` to a thread waiting in a receive: the waiter takes the
 * message at once (no inbox row), and its take is queued a moment later (the weft records it
 * when its call completes). `committed()` resolves only once that take is durable, so a message
 * the caller was promised is in the journal (src/group-commit.ts `committed`: a flush even when
 * nothing is queued yet). Read through a second SQLite connection, as another process would.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'

const listener = thread({
  uses: ['mailbox'],
  async does() {
    const got: unknown[] = []
    for (let i = 0; i < 3; i++) got.push(await this.mailbox.receive())
    return got
  },
})

it('a message sent to a waiting receiver is recorded once committed() resolves', async () => {
  const file = join(tempDir('raiment-committed-'), 'w.db')
  const weave = await Weave.open({ db: file, threads: { listener }, ioLibs: false, dumps: false, passivateAfter: false })
  const other = new Database(file, { readonly: true })
  try {
    const started = new Promise<void>((res) => weave.once('thread-start', () => res()))
    const id = weave.spawn('listener')
    // Its receive waits on the inbox once its run has started and its spawn is committed.
    await started
    await weave.committed()
    for (let i = 0; i < 3; i++) {
      expect(weave.send(id, { i })).toEqual({ delivered: true, to: id })
      await weave.committed()
      const recorded = other.prepare("SELECT count(*) FROM journal WHERE thread = ? AND key LIKE 'mailbox.take:%'").pluck().get(id) as number
      const inbox = other.prepare('SELECT count(*) FROM inbox WHERE thread = ?').pluck().get(id) as number
      expect({ recorded, inbox }).toEqual({ recorded: i + 1, inbox: 0 })
    }
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: [{ i: 0 }, { i: 1 }, { i: 2 }] })
  } finally {
    other.close()
    await weave.close()
  }
})
