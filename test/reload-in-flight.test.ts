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
import { until } from './support/until.js'

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

/**
 * A project with poster v1, and an errand library whose pays the test answers (`answers`);
 * `called` resolves once `n` pays were asked. `asked`: each pay and authorize, with its call id.
 */
function project(n: number) {
  const dir = tempDir('raiment-reload-flight-')
  mkdirSync(join(dir, 'threads'))
  const file = join(dir, 'threads', 'poster.ts')
  writeFileSync(file, poster(1))
  const asked: string[] = []
  const answers: Array<(v: string) => void> = []
  let started: () => void = () => {}
  const called = new Promise<void>((res) => (started = res))
  const errand = {
    pay: (what: string): Promise<string> => {
      asked.push(`pay ${callContext().callId}`)
      if (asked.length === n) started()
      return new Promise((res) => answers.push((v) => res(`${what}: ${v}`)))
    },
    authorize: (what: string): Promise<string> => {
      asked.push(`authorize ${callContext().callId}`)
      return Promise.resolve(`${what}: authorized`)
    },
    note: (): Promise<void> => Promise.resolve(),
  }
  const open = (): Promise<Weave> => Weave.open({ db: join(dir, 'w.db'), threads: join(dir, 'threads'), libraries: { errand }, ioLibs: false, durability: 'memory', dumps: false, passivateAfter: false })
  return { file, asked, answers, called, open }
}

it('calls in flight at a reload are made once: they finish, are recorded, and the threads move to the new code with them', async () => {
  const { file, asked, answers, called, open } = project(2)
  const weave = await open()
  try {
    const ids = [weave.spawn('poster'), weave.spawn('poster')]
    await called
    writeFileSync(file, poster(2))
    const reloading = weave.reload()
    // Answered once the reload has had time to reach the threads (nothing tells when it waits for
    // their calls, all at once): before, it had let go of them by then, and the threads on the new
    // code had made the calls again.
    setTimeout(() => answers.forEach((a) => a('paid')), 500)
    const report = await reloading
    expect(report.types).toMatchObject([{ type: 'poster', moved: ids, kept: [] }])
    for (const id of ids) expect(await weave.join(id)).toMatchObject({ status: 'done', result: { version: 2, paid: 'order-42: paid' } })
    expect(asked).toHaveLength(2)
  } finally {
    await weave.close()
  }
})

const patchedPoster = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['errand', 'patch'],
  async does() {
    if (await this.patch.patched('two-steps')) return { version: 2, paid: await this.errand.authorize('order-42') }
    const paid = await this.errand.pay('order-42')
    await this.errand.note(paid)
    return { version: 2, paid }
  },
})
`

it('a call still in flight when the reload stops waiting: the new code asks for it first, so a patch before it keeps the old path (a user trial charged twice)', async () => {
  const { file, asked, answers, called, open } = project(1)
  const weave = await open()
  try {
    const id = weave.spawn('poster')
    await called
    writeFileSync(file, patchedPoster)
    // The pay is never answered within the reload's wait (10 s): the thread is let go of with it in flight.
    const report = await weave.reload()
    expect(report.types).toMatchObject([{ type: 'poster', moved: [id], kept: [] }])
    await until('the pay asked again on the new code', () => asked.length === 2)
    answers.forEach((a) => a('paid'))
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: { version: 2, paid: 'order-42: paid' } })
    // Made again with its call id (a PSP that dedupes by it charges once), never authorized.
    expect(asked).toHaveLength(2)
    expect(asked[0]).toBe(asked[1])
    expect(asked[0]).toMatch(/^pay /)
  } finally {
    await weave.close()
  }
}, 30_000)
