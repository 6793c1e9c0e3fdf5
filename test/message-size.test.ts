/**
 * The send-side size limit (`maxMessageBytes`, src/message-size.ts): a message bigger than it is
 * refused at the send with MessageTooLarge, nothing sent, inside one weave too; in a thread the
 * refusal is the call's outcome (recorded, so a replay sees it again); `raiment send` measures by
 * the limit the weave left in its journal. No broker.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { MessageTooLarge, Weave, thread } from 'raiment'
import { sendMessage } from '../src/cli/messages.js'
import { tempDir } from './support/tmp.js'

const LIMIT = 4096

/** Sends a message of `size` characters to `to`, then a small one; returns what each send did. */
const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; size: number }) {
    const big = await this.mailbox.send(p.to, 'x'.repeat(p.size)).then(
      () => 'sent',
      (e: unknown) => (e instanceof MessageTooLarge ? `${e.code} ${e.bytes} ${e.limit}` : `other: ${String(e)}`),
    )
    await this.mailbox.send(p.to, 'small')
    return big
  },
})
const sink = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive<string>()
  },
})

async function open(db: string, maxMessageBytes?: number): Promise<Weave> {
  return Weave.open({ db, durability: 'memory', threads: { sender, sink }, dumps: false, ioLibs: false, ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }) })
}

describe('a message bigger than maxMessageBytes', () => {
  it('is refused in a thread as the send call outcome, recorded, nothing delivered', async () => {
    const db = join(tempDir(), 'w.db')
    const w = await open(db, LIMIT)
    const to = w.spawn('sink')
    const s = w.spawn('sender', { to, size: LIMIT })
    const end = await w.join(s)
    // The body travels as a JSON string: J"xxx…" quoted again, "J\"xxx…\"": 4,096 + 7 bytes.
    expect(end).toMatchObject({ status: 'done', result: `RAIMENT_MESSAGE_TOO_LARGE ${LIMIT + 7} ${LIMIT}` })
    // The sink took the small one: the big one never reached its inbox.
    expect(await w.join(to)).toMatchObject({ status: 'done', result: 'small' })
    const rec = w.journal.db.prepare("SELECT ok, outcome FROM journal WHERE thread = ? AND key LIKE 'mailbox.send%' ORDER BY seq").raw(true).all(s) as Array<[number, string]>
    expect(rec[0]?.[0]).toBe(0)
    expect(rec[0]?.[1]).toContain('RAIMENT_MESSAGE_TOO_LARGE')
    await w.close()
  })

  it('is refused by weave.send, with the size, the limit and what to do; one within it goes', async () => {
    const w = await open(join(tempDir(), 'w.db'), LIMIT)
    const to = w.spawn('sink')
    let err: unknown
    try {
      w.send(to, { payload: 'y'.repeat(LIMIT) })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(MessageTooLarge)
    expect((err as MessageTooLarge).code).toBe('RAIMENT_MESSAGE_TOO_LARGE')
    expect((err as Error).message).toMatch(/is \d+ bytes encoded, more than the limit of 4096 bytes \(maxMessageBytes\).*send a reference.*max_message_size/)
    expect(w.send(to, 'z'.repeat(LIMIT - 100))).toEqual({ delivered: true, to })
    expect(await w.join(to)).toMatchObject({ status: 'done', result: 'z'.repeat(LIMIT - 100) })
    await w.close()
  })

  it('is refused by raiment send, by the limit of the weave of the journal', async () => {
    const db = join(tempDir(), 'w.db')
    const w = await open(db, LIMIT)
    const to = w.spawn('sink')
    await w.close()
    await expect(sendMessage(db, to, 'q'.repeat(LIMIT))).rejects.toThrow(MessageTooLarge)
    expect((await sendMessage(db, to, 'small')).result).toEqual({ delivered: true, to })
  })

  it('defaults to 16 MiB and checks the option', async () => {
    const w = await open(join(tempDir(), 'w.db'))
    const to = w.spawn('sink')
    expect(() => w.send(to, 'a'.repeat(16 * 1024 * 1024))).toThrow(MessageTooLarge)
    await w.close()
    await expect(open(join(tempDir(), 'x.db'), 10)).rejects.toThrow(/maxMessageBytes must be a whole number of bytes from 1024 up/)
  })
})
