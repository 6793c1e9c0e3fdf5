/**
 * `raiment show ID` says how many messages wait in the thread's mailbox, not received yet (a user
 * trial: a message a selective receive never matches showed only as the journal's inbox count).
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { raiment } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

/** Takes only `{ kind: 'order' }` messages; anything else waits in its mailbox. */
const picky = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive({ match: { kind: 'order' } })
  },
})

it('raiment show counts the messages waiting in the mailbox, in text and in --json', async () => {
  const dir = tempDir()
  const db = join(dir, 'w.db')
  const weave = await Weave.open({ db, threads: { picky }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
  const id = weave.spawn('picky')
  const other = weave.spawn('picky')
  weave.send(id, { kind: 'noop' })
  weave.send(id, { kind: 'ping' })
  await weave.committed()
  await weave.close()
  const text = await raiment(dir, 'show', id, '--db', db)
  expect(text.code, text.stderr).toBe(0)
  expect(text.stdout).toContain('mailbox: 2 messages waiting, not received yet')
  const json = await raiment(dir, 'show', id, '--db', db, '--json')
  expect((JSON.parse(json.stdout) as { mailbox: number }).mailbox).toBe(2)
  const none = await raiment(dir, 'show', other, '--db', db)
  expect(none.stdout).not.toContain('mailbox:')
}, 30_000)
