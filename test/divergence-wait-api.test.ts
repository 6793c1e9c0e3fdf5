/**
 * `Weave.open({ onDivergence: 'wait' })` in a program (src/divergence-wait.ts): a thread whose
 * changed code does not replay its record waits, nothing recorded and nothing made live (a
 * compensation in a catch included), also where its code ends before its record does; the weave
 * warns once; a cancel of it is kept for when it runs; a kill ends it; and a reopen with code that
 * replays its record resumes it. Real SQLite files in temp dirs.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { parkedOf } from '../src/parked-listing.js'
import { tempDir } from './support/tmp.js'
import { stepLib } from './support/step-lib.js'

declare module 'raiment' {
  interface Libraries {
    dw: {
      step(name: string): Promise<string>
      /** Never answers: holds a thread running until its weave closes. */
      gate(): Promise<never>
    }
  }
}


const v1 = thread({
  uses: ['dw'],
  async does() {
    const a = await this.dw.step('a')
    const b = await this.dw.step('b')
    await this.dw.gate()
    return [a, b]
  },
})

async function open(dir: string, t: AnyThreadType, lib = stepLib(), warnings: Error[] = []): Promise<Weave> {
  return Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { t }, libraries: { dw: lib.lib }, ioLibs: false, dumps: join(dir, 'dumps'), onDivergence: 'wait', onWarning: (w) => warnings.push(w) })
}

/** Runs v1 until it waits at the gate (two outcomes recorded), then closes its weave. */
async function leaveRunning(dir: string): Promise<string> {
  const lib = stepLib()
  const weave = await open(dir, v1, lib)
  const id = weave.spawn('t')
  await new Promise<void>((resolve) => {
    const poll = (): void => void (lib.seen.includes('gate') ? resolve() : setImmediate(poll))
    poll()
  })
  await weave.close()
  return id
}

/** Until thread `id` waits for code (its meta row says where it diverges). */
async function waiting(weave: Weave, id: string): Promise<string> {
  for (let i = 0; i < 500; i++) {
    weave.journal.flushNow()
    const p = parkedOf(weave.journal.db, id)
    if (p?.diverges !== undefined) return p.diverges
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`thread ${id} never waited for code`)
}

describe("onDivergence: 'wait'", () => {
  it('a diverged thread waits: its compensation is not made live, nothing is recorded, one warning; a cancel is kept; kill ends it', async () => {
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const changed = thread({
      uses: ['dw'],
      async does() {
        try {
          await this.dw.step('a')
          await this.dw.step('x')
        } catch (e) {
          await this.dw.step('compensate')
          throw e
        }
      },
    })
    const lib = stepLib()
    const warnings: Error[] = []
    const weave = await open(dir, changed, lib, warnings)
    try {
      expect(await waiting(weave, id)).toMatch(/^diverges at entry 1 \(seq 1\): the code calls dw\.step\("x"\) where the record holds dw\.step\("b"\)/)
      expect(lib.seen).toEqual([])
      expect(weave.journal.thread(id)!.status).toBe('running')
      expect(weave.journal.entries(id)).toHaveLength(2)
      const told = warnings.filter((w) => (w as { code?: string }).code === 'RAIMENT_REPLAY_DIVERGENCE')
      expect(told).toHaveLength(1)
      expect(told[0]!.message).toContain('It waits (on-divergence wait)')
      // A cancel is kept for when it runs; a kill ends it now.
      expect(weave.cancel(id, 'no longer wanted')).toBe(true)
      weave.journal.flushNow()
      expect(weave.journal.meta(`cancel:${id}`)).toBe('no longer wanted')
      const joined = weave.join(id)
      expect(weave.kill(id)).toBe(true)
      expect((await joined).status).toBe('killed')
      weave.journal.flushNow()
      expect(parkedOf(weave.journal.db, id)).toBeUndefined()
    } finally {
      await weave.close()
    }
    // Nothing of its function was made live, up to the close: its compensation neither.
    expect(lib.seen).toEqual([])
  })

  it('code that ends before its record does waits too, and a reopen with code that replays the record resumes it', async () => {
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const short = thread({
      uses: ['dw'],
      async does() {
        return [await this.dw.step('a')]
      },
    })
    const weave = await open(dir, short)
    try {
      expect(await waiting(weave, id)).toMatch(/^diverges at entry 1 \(seq 1\): the code ends where the record holds dw\.step\("b"\)/)
      expect(weave.journal.thread(id)!.status).toBe('running')
    } finally {
      await weave.close()
    }
    const fixed = thread({
      uses: ['dw'],
      async does() {
        const a = await this.dw.step('a')
        const b = await this.dw.step('b')
        return [a, b, 'fixed']
      },
    })
    // Still running, not failed, after that close: the fixed code resumes it and it ends done.
    const again = await open(dir, fixed)
    try {
      const end = await again.join(id)
      expect(end).toMatchObject({ status: 'done', result: ['a', 'b', 'fixed'] })
    } finally {
      await again.close()
    }
  })
  it('a cancel of a waiting thread is kept, and applied at its first live call once code that replays it runs', async () => {
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const changed = thread({
      uses: ['dw'],
      async does() {
        return [await this.dw.step('x')]
      },
    })
    const weave = await open(dir, changed)
    try {
      await waiting(weave, id)
      expect(weave.cancel(id, 'no longer wanted')).toBe(true)
    } finally {
      await weave.close()
    }
    const fixed = thread({
      uses: ['dw'],
      async does() {
        await this.dw.step('a')
        await this.dw.step('b')
        return await this.dw.step('c')
      },
    })
    const lib = stepLib()
    const again = await open(dir, fixed, lib)
    try {
      const end = await again.join(id)
      expect(end.status).toBe('failed')
      expect(end.status === 'failed' && (end.error as { code?: string }).code).toBe('RAIMENT_THREAD_CANCELLED')
      expect(lib.seen).toEqual([])
    } finally {
      await again.close()
    }
  })
  it('a waiting thread linked to a thread that fails ends failed with it: the link\'s end is not lost', async () => {
    const linked = (second: string) =>
      thread({
        uses: ['dw', 'threads'],
        async does(p: { target: string }) {
          await this.dw.step('a')
          await this.threads.link(p.target)
          await this.dw.step(second)
          await this.dw.gate()
        },
      })
    const partner = thread({
      uses: ['mailbox'],
      async does() {
        await this.mailbox.receive()
        throw new Error('the partner fails')
      },
    })
    const dir = tempDir()
    const lib = stepLib()
    const openWith = (t: AnyThreadType, l = lib) => Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { t, partner }, libraries: { dw: l.lib }, ioLibs: false, dumps: false, onDivergence: 'wait', onWarning: () => {} })
    const first = await openWith(linked('b'))
    const b = first.spawn('partner')
    const t = first.spawn('t', { target: b })
    await new Promise<void>((resolve) => {
      const poll = (): void => void (lib.seen.includes('gate') ? resolve() : setImmediate(poll))
      poll()
    })
    await first.close()
    const again = await openWith(linked('CHANGED'), stepLib())
    try {
      await waiting(again, t)
      again.send(b, 'go')
      expect((await again.join(b)).status).toBe('failed')
      const end = await again.join(t)
      expect(end.status).toBe('failed')
      await again.committed()
      expect(parkedOf(again.journal.db, t)).toBeUndefined()
    } finally {
      await again.close()
    }
  })
})
