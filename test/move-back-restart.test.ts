/**
 * A weave that stopped (a crash) after it found a thread that moved to it unable to replay here,
 * and before it sent it back, sends it back at its next run (src/weave-moves.ts: meta
 * `back:<id>`, written as it finds the divergence, deleted in the batch the thread leaves in).
 * The journal is made as such a crash leaves it: the thread running here with a record this
 * weave's code diverges from, and the mark. No broker: the move record waits in the outbox.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { tempDir } from './support/tmp.js'

const loopNew = thread({
  uses: ['mailbox', 'clock'],
  async does() {
    await this.clock.now()
    return this.mailbox.receive()
  },
})

const loopOld = thread({
  uses: ['mailbox', 'clock'],
  async does() {
    return this.mailbox.receive()
  },
})

const open = (db: string, loop: AnyThreadType): Promise<Weave> => Weave.open({ db, weaveId: 'b', threads: { loop }, ioLibs: false, dumps: false, durability: 'sync', passivateAfter: false })

async function crashedWhileSendingBack(mark: boolean): Promise<{ db: string; t: string }> {
  const db = join(tempDir(), 'b.db')
  const made = await open(db, loopNew)
  const t = made.spawn('loop')
  await expect.poll(() => made.journal.entries(t).length, { timeout: 10_000, interval: 20 }).toBe(1)
  await made.close()
  if (mark) {
    const raw = new Database(db)
    raw.prepare('INSERT INTO meta (k, v) VALUES (?, ?)').run(`back:${t}`, 'a')
    raw.close()
  }
  return { db, t }
}

it('the next run sends it back to the weave it came from: moved there, its record in the outbox, the mark gone', async () => {
  const { db, t } = await crashedWhileSendingBack(true)
  const warned: string[] = []
  const weave = await Weave.open({ db, weaveId: 'b', threads: { loop: loopOld }, ioLibs: false, dumps: false, durability: 'sync', passivateAfter: false, onWarning: (w) => warned.push((w as { code?: string }).code ?? '') })
  try {
    expect(await weave.join(t)).toEqual({ id: t, type: 'loop', status: 'moved', to: 'a' })
    expect(warned).toContain('RAIMENT_MOVED_BACK')
    const raw = new Database(db, { readonly: true })
    const out = raw.prepare('SELECT dest, body FROM outbox').all() as Array<{ dest: string; body: string }>
    expect(out).toHaveLength(1)
    expect(out[0]!.dest).toBe('a')
    expect(JSON.parse(out[0]!.body)).toMatchObject({ k: 'move', record: { thread: { id: t }, back: expect.stringContaining('diverge') as unknown } })
    expect(raw.prepare("SELECT count(*) FROM meta WHERE k LIKE 'back:%'").pluck().get()).toBe(0)
    raw.close()
  } finally {
    await weave.close()
  }
})

it('without the mark (a thread of its own), it fails with ReplayDivergence, as any resume does', async () => {
  const { db, t } = await crashedWhileSendingBack(false)
  const weave = await open(db, loopOld)
  try {
    expect(await weave.join(t)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_REPLAY_DIVERGENCE' } })
  } finally {
    await weave.close()
  }
})
