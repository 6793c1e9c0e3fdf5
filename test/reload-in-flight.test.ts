/**
 * A reload that moves a thread to its new code while one of its calls is in flight: the call
 * finishes and is recorded first (the thread stops at its next call), then the thread resumes on
 * the new code, with it in its record, so the call is made once. Before, the reload let go of the thread at once: the resumed thread
 * made the call again under the same call id while the first was still running (a payment sent
 * twice). Real thread files, `weave.reload()`, a library whose calls the test answers.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { callContext, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const poster = (version: number): string => `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['errand'],
  async does() {
    const paid = await this.errand.pay('order-42')
    await this.errand.note(paid)
    return { version: ${version}, paid }
  },
})
`

it('a call in flight at a reload is made once: it finishes, is recorded, and the thread moves to the new code with it', async () => {
  const dir = tempDir('raiment-reload-flight-')
  mkdirSync(join(dir, 'threads'))
  const file = join(dir, 'threads', 'poster.ts')
  writeFileSync(file, poster(1))
  const asked: string[] = []
  let answer: (v: string) => void = () => {}
  let started: () => void = () => {}
  const called = new Promise<void>((res) => (started = res))
  const errand = {
    pay: (what: string): Promise<string> => {
      asked.push(callContext().callId)
      started()
      return new Promise((res) => (answer = (v) => res(`${what}: ${v}`)))
    },
    note: (): Promise<void> => Promise.resolve(),
  }
  const weave = await Weave.open({ db: join(dir, 'w.db'), threads: join(dir, 'threads'), libraries: { errand }, ioLibs: false, durability: 'memory', dumps: false, passivateAfter: false })
  try {
    const id = weave.spawn('poster')
    await called
    writeFileSync(file, poster(2))
    const reloading = weave.reload()
    // Answered once the reload has had time to reach the thread (nothing tells when it waits for
    // the call): before, it had let go of it by then, and the thread on the new code had made the
    // call again.
    setTimeout(() => answer('paid'), 500)
    const report = await reloading
    expect(report.types).toMatchObject([{ type: 'poster', moved: [id], kept: [] }])
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: { version: 2, paid: 'order-42: paid' } })
    expect(asked).toHaveLength(1)
  } finally {
    await weave.close()
  }
})
