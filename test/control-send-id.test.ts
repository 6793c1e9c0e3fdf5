/**
 * `raiment send` (and the UI's send) to a running weave: the message's id is chosen by the asker,
 * not numbered by the journal's control requests. A journal rebuilt (a takeover, `raiment
 * restore`) or made again numbers its requests from 1 again, while its threads' inboxes, and
 * other weaves' received ids, still hold the ids of the messages sent before: a second message
 * under such an id was dropped as a copy while the asker was told "delivered". Here the control
 * table is emptied between two sends, as a rebuilt journal's is; both messages must arrive.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { sendMessage } from '../src/cli/messages.js'
import { tempDir } from './support/tmp.js'

/** Takes no message until a message matching `{ go: true }` comes: what is sent before waits in its inbox. */
const later = thread({
  uses: ['mailbox'],
  async does() {
    await this.mailbox.receive({ match: { go: true } })
    return [await this.mailbox.receive(), await this.mailbox.receive()]
  },
})

describe('a send from outside, answered by a running weave', () => {
  it('is not dropped as a copy of one sent before the journal numbered its requests again', async () => {
    const db = join(tempDir(), 'raiment.db')
    const open = (): Promise<Weave> => Weave.open({ db, threads: { later }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
    const weave = await open()
    let id: string
    try {
      id = weave.spawn('later')
      await weave.committed()
      expect((await sendMessage(db, id, 'first')).result).toEqual({ delivered: true, to: id })
      const raw = new Database(db)
      raw.prepare('DELETE FROM control').run()
      raw.close()
      expect((await sendMessage(db, id, 'second')).result).toEqual({ delivered: true, to: id })
    } finally {
      await weave.close()
    }
    // What the inbox holds is what the journal holds: the weave opened again reads it.
    const raw = new Database(db, { readonly: true })
    expect(raw.prepare('SELECT body FROM inbox WHERE thread = ? ORDER BY n').pluck().all(id)).toHaveLength(2)
    raw.close()
    const again = await open()
    try {
      again.send(id, { go: true })
      expect(await again.join(id)).toMatchObject({ status: 'done', result: ['first', 'second'] })
    } finally {
      await again.close()
    }
  })
})
