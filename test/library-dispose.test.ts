/**
 * What a library holds open is let go of with the weave: a factory's object may have a
 * `Symbol.asyncDispose` (or `Symbol.dispose`) method, which no thread can call and the weave calls
 * once, when it closes (after its journal), or when it fails to open after making the library.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { thread, Weave, type LibraryApi, type LibraryModule } from 'raiment'
import { tempDir } from './support/tmp.js'
import { resultOf } from './support/io-libs.js'

const held = { made: 0, closed: 0 }
const holding = { async ping(): Promise<string> { return 'pong' } }

declare module 'raiment' {
  interface Libraries {
    holding: LibraryApi<typeof holding & { [Symbol.asyncDispose](): Promise<void> }>
  }
}

/** A library module whose factory counts in `held` what it made and what was let go of, by `Symbol.asyncDispose` or `Symbol.dispose`. */
function holdingModule(sync: boolean, close = (): void => void held.closed++): LibraryModule {
  return {
    default: () => {
      held.made++
      return { ...holding, ...(sync ? { [Symbol.dispose]: close } : { [Symbol.asyncDispose]: async () => close() }) }
    },
  }
}

const pinger = thread({
  uses: ['holding'],
  async does() {
    // Not in the type (LibraryApi keeps string keys), nor a method of the thread's view.
    const view = this.holding as unknown as Record<symbol, unknown>
    return { ping: await this.holding.ping(), dispose: typeof view[Symbol.asyncDispose], sync: typeof view[Symbol.dispose] }
  },
})

describe('library dispose', () => {
  for (const sync of [false, true]) {
    it(`runs once when the weave closes (${sync ? 'Symbol.dispose' : 'Symbol.asyncDispose'}); no thread can call it`, async () => {
      Object.assign(held, { made: 0, closed: 0 })
      const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads: { pinger }, libraries: { holding: holdingModule(sync) }, dumps: false })
      expect(resultOf(await weave.join(weave.spawn('pinger')))).toEqual({ ping: 'pong', dispose: 'undefined', sync: 'undefined' })
      expect(held.closed).toBe(0)
      await weave.close()
      await weave.close()
      expect(held).toEqual({ made: 1, closed: 1 })
    })
  }

  it('runs when the weave fails to open after making it', async () => {
    Object.assign(held, { made: 0, closed: 0 })
    const broken = thread({ uses: ['nope' as never], async does() {} })
    await expect(Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads: { broken }, libraries: { holding: holdingModule(false) }, dumps: false })).rejects.toThrow(/nope/)
    expect(held).toEqual({ made: 1, closed: 1 })
  })

  it("a close that throws fails the weave's close, once the journal is let go", async () => {
    const db = join(tempDir(), 'w.db')
    const failing = holdingModule(true, () => {
      throw new Error('cannot let go')
    })
    const weave = await Weave.open({ db, durability: 'memory', threads: { pinger }, libraries: { holding: failing }, dumps: false })
    await expect(weave.close()).rejects.toThrow('cannot let go')
    // The journal's owner lock was let go all the same: another weave opens it.
    const again = await Weave.open({ db, durability: 'memory', threads: {}, dumps: false })
    await again.close()
  })
})
