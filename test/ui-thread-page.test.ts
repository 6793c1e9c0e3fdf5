/**
 * What a thread's page in `raiment ui` shows (src/ui/thread-page.ts), of threads a real weave ran:
 * values cut at a few KB with a note of how much more the dump holds.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { makeDump } from '../src/dump.js'
import { Journals } from '../src/ui/data.js'
import { threadDetail } from '../src/ui/thread-data.js'
import { threadPage } from '../src/ui/thread-page.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    big: { blob(kb: number): Promise<string>; fail(kb: number): Promise<never> }
  }
}

const big = {
  async blob(kb: number) {
    return 'x'.repeat(kb * 1024)
  },
  async fail(kb: number): Promise<never> {
    throw new Error('y'.repeat(kb * 1024))
  },
}

/** Calls `blob` `n` times (500 KB each, then 10 KB), and ends with a large result. */
const hoarder = thread({
  uses: ['big'],
  async does(p: { n: number; pad: string }) {
    let got = 0
    for (let i = 0; i < p.n; i++) got += (await this.big.blob(500)).length
    got += (await this.big.blob(10)).length
    await this.big.fail(100).catch(() => {})
    return { got, pad: p.pad.repeat(2) }
  },
})

async function open(threads: Record<string, AnyThreadType>) {
  const db = join(tempDir('raiment-ui-page-'), 'w.db')
  const weave = await Weave.open({ db, durability: 'memory', threads: threads as never, libraries: { big }, ioLibs: false, dumps: false, config: { logLevel: 'silent' } })
  return { db, weave }
}

describe('a thread page', () => {
  it('cuts each large value at a few KB and says how much more the dump has', async () => {
    const { db, weave } = await open({ hoarder })
    const id = weave.spawn('hoarder', { n: 20, pad: 'p'.repeat(300 * 1024) })
    try {
      expect((await weave.join(id)).status).toBe('done')
    } finally {
      await weave.close()
    }
    const js = new Journals([db])
    const html = String(threadPage(threadDetail(js, id, 0)!))
    // 20 outcomes of 500 KB, one of 10 KB, an error of 100 KB, params of 300 KB, a result of 600 KB.
    expect(html.length).toBeLessThan(150 * 1024)
    const notes = new Set(html.match(/… [^<]*the dump has it whole/g))
    expect(notes).toEqual(
      new Set([
        // Too long to decode: the start of the recorded text (the outcomes, the error record).
        '… 497 KB more (shown as recorded): the dump has it whole',
        '… 197 KB more (shown as recorded): the dump has it whole',
        // Decoded, and cut as shown: the 10 KB outcome, the params, the result.
        '… 7 KB more: the dump has it whole',
        '… 297 KB more: the dump has it whole',
        '… 597 KB more: the dump has it whole',
      ]),
    )
    // The dump the page links to holds them whole.
    const dump = js.read(0, (j) => makeDump(j, id))
    expect(dump.entries[0]!.value).toHaveLength(500 * 1024)
  })
})
