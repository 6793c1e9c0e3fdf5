/**
 * `weave.join(id)` settles when the weave closes (a user trial: an HTTP server's handlers, each
 * awaiting a join, hung for ever once the server closed its weave). A join pending at the close
 * rejects with WeaveClosed, for a thread running in memory or passivated; a join asked of a
 * closed weave rejects with WeaveClosed too, whatever the id (it threw a raw TypeError, "The
 * database connection is not open", for one the weave had not loaded).
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, WeaveClosed } from 'raiment'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

const sleeper = thread({
  uses: ['clock'],
  async does() {
    await this.clock.sleep(60_000)
    return 'woke'
  },
})
const quick = thread({ uses: ['clock'], async does() { return 'done' } })

function open(passivateAfter: number | false): Promise<Weave> {
  return Weave.open({ db: join(tempDir(), 'raiment.db'), threads: { sleeper, quick }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter })
}

/** How `p` settled within 2 s: its rejection's class and code, 'resolved', or 'pending'. */
async function settled(p: Promise<unknown>): Promise<string> {
  const timeout = new Promise<string>((r) => setTimeout(() => r('pending'), 2000))
  return Promise.race([p.then(() => 'resolved', (e: Error & { code?: string }) => `${e.name} ${e.code ?? ''}`), timeout])
}

describe('join and close', () => {
  it('a join of a thread another process recorded, not yet started here, rejects at the close and reads no closed journal', async () => {
    const errors: unknown[] = []
    const onErr = (e: unknown): number => errors.push(e)
    process.on('uncaughtException', onErr)
    try {
      const db = join(tempDir(), 'raiment.db')
      const weave = await Weave.open({ db, threads: { quick }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false, pollMs: 10_000 })
      const other = new Database(db)
      other.prepare("INSERT INTO threads (id, type, params, parent, status, created, scope) VALUES ('ext-1', 'quick', 'U', NULL, 'pending', ?, 'x')").run(Date.now())
      other.close()
      const p = settled(weave.join('ext-1'))
      // Its check looks again every 10 ms: let it look once before the close.
      await new Promise((r) => setTimeout(r, 15))
      await weave.close()
      expect(await p).toBe('WeaveClosed RAIMENT_WEAVE_CLOSED')
      // A check armed before the close, due after it, must read nothing.
      await new Promise((r) => setTimeout(r, 50))
      expect(errors.map(String)).toEqual([])
    } finally {
      process.off('uncaughtException', onErr)
    }
  })

  it('rejects a join pending on a running thread with WeaveClosed once the weave closes', async () => {
    const weave = await open(false)
    const id = weave.spawn('sleeper')
    await weave.committed()
    const pending = weave.join(id)
    await weave.close()
    expect(await settled(pending)).toBe('WeaveClosed RAIMENT_WEAVE_CLOSED')
  })

  it('rejects a join pending on a passivated thread with WeaveClosed once the weave closes', async () => {
    const weave = await open(0)
    const id = weave.spawn('sleeper')
    await weave.committed()
    await until('the thread to passivate', () => !weave.inMemory(id))
    const pending = weave.join(id)
    await weave.close()
    expect(await settled(pending)).toBe('WeaveClosed RAIMENT_WEAVE_CLOSED')
  })

  it('resolves a join of a thread that ends before the close is through', async () => {
    const weave = await open(false)
    const id = weave.spawn('quick')
    const pending = weave.join(id)
    await weave.close()
    expect(await pending).toMatchObject({ status: 'done', result: 'done' })
  })

  it('rejects a join asked of a closed weave with WeaveClosed, for any id', async () => {
    const weave = await open(false)
    const id = weave.spawn('quick')
    await weave.join(id)
    await weave.close()
    for (const asked of [id, 'no-such-thread']) {
      const err = await weave.join(asked).then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(WeaveClosed)
      expect((err as WeaveClosed).message).toMatch(new RegExp(`closed; open a new one to join thread '${asked}'`))
    }
  })
})
