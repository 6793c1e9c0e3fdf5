/**
 * Kill: the thread is disconnected from the weft. Its pending calls reject with ThreadKilled,
 * every later call throws it, it is recorded as killed (and never resumed), and its libraries
 * see no further call from it, not even one that was waiting for a concurrency slot.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, ThreadKilled, Weave, type AnyThreadType, type LibrarySpec } from 'raiment'
import { callContext } from 'raiment'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    kl: {
      step(name: string): Promise<string>
      hang(name: string): Promise<never>
    }
  }
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** A library that logs every invocation; `hang` waits until its call is aborted. */
function killLib(concurrency?: number) {
  const seen: string[] = []
  const aborts: unknown[] = []
  const hanging = deferred()
  const impl = {
    async step(name: string) {
      seen.push(name)
      return name
    },
    hang(name: string): Promise<never> {
      const { signal } = callContext()
      seen.push(name)
      hanging.resolve()
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          aborts.push(signal.reason)
          reject(new Error('aborted'))
        }),
      )
    },
  }
  const lib: LibrarySpec = concurrency === undefined ? impl : { default: impl, concurrency }
  return { lib, seen, aborts, hanging: hanging.promise }
}

async function open(threads: Record<string, AnyThreadType>, lib: LibrarySpec, db = join(tempDir(), 'k.db')): Promise<Weave> {
  return Weave.open({ db, durability: 'memory', threads, libraries: { kl: lib }, ioLibs: false, dumps: false })
}

describe('weave.kill, and a weave letting go of its threads at close', () => {
  it('rejects pending calls with ThreadKilled, throws it from later calls, records the thread killed, and calls nothing more', async () => {
    const k = killLib()
    const errors: unknown[] = []
    const over = deferred()
    const t = thread({
      uses: ['kl'],
      async does() {
        await this.kl.step('a')
        try {
          await this.kl.hang('b')
        } catch (e) {
          errors.push(e)
        }
        // The thread goes on after the kill; the weft refuses all it asks.
        for (const name of ['c', 'd']) {
          try {
            await this.kl.step(name)
          } catch (e) {
            errors.push(e)
          }
        }
        over.resolve()
        return 'finished anyway'
      },
    })
    const weave = await open({ t }, k.lib)
    const id = weave.spawn('t')
    await k.hanging
    expect(weave.kill(id)).toBe(true)
    expect(await weave.join(id)).toEqual({ id, type: 't', status: 'killed' })
    await over.promise
    expect(errors).toHaveLength(3)
    for (const e of errors) {
      expect(e).toBeInstanceOf(ThreadKilled)
      expect((e as ThreadKilled).code).toBe('RAIMENT_THREAD_KILLED')
      expect((e as ThreadKilled).threadId).toBe(id)
    }
    // The call in flight was told through its abort signal.
    expect(k.aborts).toHaveLength(1)
    expect(k.aborts[0]).toBeInstanceOf(ThreadKilled)
    expect(k.seen).toEqual(['a', 'b'])
    await weave.committed()
    expect(weave.journal.thread(id)?.status).toBe('killed')
    // The thread's own end ('finished anyway') does not replace the kill.
    expect(weave.journal.thread(id)?.outcome).toBeNull()
    expect(weave.kill(id)).toBe(false)
    await weave.close()
  })

  it('calls waiting for a concurrency slot never reach the library', async () => {
    const k = killLib(1)
    const errors: unknown[] = []
    const t = thread({
      uses: ['kl'],
      async does() {
        const rs = await Promise.allSettled([this.kl.hang('slot'), this.kl.step('queued-1'), this.kl.step('queued-2')])
        for (const r of rs) if (r.status === 'rejected') errors.push(r.reason)
      },
    })
    const weave = await open({ t }, k.lib)
    const id = weave.spawn('t')
    await k.hanging
    weave.kill(id)
    expect((await weave.join(id)).status).toBe('killed')
    // Let the queue drain: the aborted call frees its slot; the queued ones must not run.
    await weave.committed()
    await new Promise((r) => setImmediate(r))
    expect(errors).toHaveLength(3)
    expect(errors.every((e) => e instanceof ThreadKilled)).toBe(true)
    expect(k.seen).toEqual(['slot'])
    await weave.close()
  })

  it('a killed thread stays killed: the next weave does not resume it', async () => {
    const k = killLib()
    const t = thread({
      uses: ['kl'],
      async does() {
        await this.kl.step('a')
        await this.kl.hang('b')
      },
    })
    const db = join(tempDir(), 'k.db')
    const w1 = await open({ t }, k.lib, db)
    const id = w1.spawn('t')
    await k.hanging
    w1.kill(id)
    await w1.join(id)
    await w1.close()
    const k2 = killLib()
    const w2 = await open({ t }, k2.lib, db)
    expect(w2.resumed).toBe(0)
    expect(await w2.join(id)).toMatchObject({ status: 'killed' })
    expect(k2.seen).toEqual([])
    await w2.close()
  })

  it('killing a thread before it starts: it never runs', async () => {
    const k = killLib()
    const t = thread({
      uses: ['kl'],
      async does() {
        await this.kl.step('a')
      },
    })
    const weave = await open({ t }, k.lib)
    const id = weave.spawn('t')
    expect(weave.kill(id)).toBe(true)
    expect(await weave.join(id)).toMatchObject({ status: 'killed' })
    await weave.committed()
    expect(k.seen).toEqual([])
    expect(weave.journal.thread(id)?.status).toBe('killed')
    await weave.close()
  })

  it('a kill while its end is queued, not yet committed, finds it ended: the end stays as it was', async () => {
    const k = killLib()
    const t = thread({
      uses: ['kl'],
      async does() {
        return await this.kl.step('a')
      },
    })
    const weave = await Weave.open({ db: join(tempDir(), 'k.db'), durability: 'batched', threads: { t }, libraries: { kl: k.lib }, ioLibs: false, dumps: false })
    try {
      // The kill comes right after the end was queued, before its commit.
      const journal = weave.journal
      const endThread = journal.endThread.bind(journal)
      let killed: boolean | undefined
      journal.endThread = (...a: Parameters<typeof endThread>): void => {
        endThread(...a)
        if (a[1] === 'done') killed = weave.kill(a[0])
      }
      const id = weave.spawn('t')
      expect(await weave.join(id)).toEqual({ id, type: 't', status: 'done', result: 'a' })
      expect(killed).toBe(false)
      await weave.committed()
      expect(journal.thread(id)?.status).toBe('done')
    } finally {
      await weave.close()
    }
  })

  it('weave.close(): a call waiting for a concurrency slot is not started after the weave closed', async () => {
    const seen: string[] = []
    const first = deferred()
    const firstDone = deferred()
    const slow = {
      default: {
        async step(name: string) {
          seen.push(name)
          first.resolve()
          await new Promise((r) => setTimeout(r, 20))
          firstDone.resolve()
          return name
        },
        async hang(): Promise<never> {
          return new Promise(() => {})
        },
      },
      concurrency: 1,
    }
    const t = thread({
      uses: ['kl'],
      async does() {
        return Promise.all([this.kl.step('a'), this.kl.step('b'), this.kl.step('c')])
      },
    })
    const db = join(tempDir(), 'k.db')
    const weave = await open({ t }, slow, db)
    const id = weave.spawn('t')
    await first.promise
    await weave.close()
    // 'a' finishes after the close and frees its slot: 'b' and 'c' must not start in this weave.
    await firstDone.promise
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r))
    expect(seen).toEqual(['a'])
    // They run when the thread is resumed.
    const k = killLib()
    const again = await open({ t }, k.lib, db)
    expect(await again.join(id)).toMatchObject({ status: 'done', result: ['a', 'b', 'c'] })
    expect(k.seen).toEqual(['a', 'b', 'c'])
    await again.close()
  })

  it('a thread that has ended makes no more calls, even from a branch still running', async () => {
    const k = killLib()
    const t = thread({
      uses: ['kl'],
      async does() {
        // Both calls finish in the same commit; the race is decided by the first, the thread ends,
        // and the other branch then reacts to the second.
        return Promise.race([this.kl.step('a'), this.kl.step('b').then(() => this.kl.step('after-end'))])
      },
    })
    const weave = await open({ t }, k.lib)
    const id = weave.spawn('t')
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'a' })
    await weave.committed()
    await new Promise((r) => setImmediate(r))
    expect(k.seen).toEqual(['a', 'b'])
    await weave.close()
  })
})
