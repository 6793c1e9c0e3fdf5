// A thread's row records how many journal entries it ended with (`raiment ps` shows it). The weft
// counts them as it goes (recorded on resume, live, dropped past a divergence); these tests check
// that count against the journal itself.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { Weave, thread, type AnyThreadType } from 'raiment'
import { tempDir } from './support/tmp.js'
import { stepLib } from './support/step-lib.js'

declare module 'raiment' {
  interface Libraries {
    tc: {
      step(name: string): Promise<string>
      gate(): Promise<never>
    }
  }
}


const open = (dir: string, threads: Record<string, AnyThreadType>, lib = stepLib(), extra: Partial<Parameters<typeof Weave.open>[0]> = {}) =>
  Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: threads as never, libraries: { tc: lib.lib }, ioLibs: false, dumps: false, ...extra })

const untilGate = (seen: string[]): Promise<void> =>
  new Promise((resolve) => {
    const poll = (): void => void (seen.includes('gate') ? resolve() : setImmediate(poll))
    poll()
  })

const v1 = thread({
  uses: ['tc'],
  async does() {
    const a = await this.tc.step('a')
    const b = await this.tc.step('b')
    await this.tc.gate()
    return [a, b]
  },
})

const v2 = thread({
  uses: ['tc'],
  async does() {
    return [await this.tc.step('a'), await this.tc.step('x'), await this.tc.step('b'), await this.tc.step('b')]
  },
})

describe("a thread's recorded call count", () => {
  it('is the number of its journal entries when it is done', async () => {
    const weave = await open(tempDir(), { t: v2 })
    const id = weave.spawn('t')
    expect((await weave.join(id)).status).toBe('done')
    expect(weave.journal.thread(id)?.calls).toBe(4)
    expect(weave.journal.entries(id)).toHaveLength(4)
    await weave.close()
  })

  it('is the number of its journal entries when it is killed', async () => {
    const lib = stepLib()
    const weave = await open(tempDir(), { t: v1 }, lib)
    const id = weave.spawn('t')
    await untilGate(lib.seen)
    weave.kill(id)
    expect((await weave.join(id)).status).toBe('killed')
    expect(weave.journal.thread(id)?.calls).toBe(2)
    await weave.close()
  })

  it('counts what it recorded before a restart and drops what a changed thread no longer asks for', async () => {
    const dir = tempDir()
    const lib = stepLib()
    const first = await open(dir, { t: v1 }, lib)
    const id = first.spawn('t')
    await untilGate(lib.seen)
    await first.close()

    const again = await open(dir, { t: v2 }, stepLib(), { onDivergence: 'continue' })
    expect(again.resumed).toBe(1)
    expect((await again.join(id)).status).toBe('done')
    // 'a' from the record, the record's 'b' dropped where 'x' was asked instead, then x, b, b live.
    const entries = again.journal.entries(id)
    expect(entries.map(([, key]) => key)).toEqual(['tc.step:["a"]', 'tc.step:["x"]', 'tc.step:["b"]', 'tc.step:["b"]'])
    expect(again.journal.thread(id)?.calls).toBe(entries.length)
    await again.close()
  })
})
