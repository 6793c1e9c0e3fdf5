/**
 * `replay(type, dump, { at })` of a finished thread's dump (a user trial): the thread asks for the
 * request past the entries kept, and the divergence said "code or inputs changed… record it
 * again", which is not what happened. It says the replay stopped where `at` cut the record.
 */
import { describe, expect, it } from 'vitest'
import { ReplayDivergence, thread } from 'raiment'
import { record, replay } from 'raiment/testing'

const three = thread({
  uses: ['clock'],
  async does() {
    const a = await this.clock.now()
    const b = await this.clock.now()
    const c = await this.clock.now()
    return [a, b, c].length
  },
})

describe('replay with at', () => {
  it('says the record was cut at `at`, not that the code or inputs changed', async () => {
    const { dump } = await record(three, undefined, { name: 'three', ioLibs: false })
    const run = await replay(three, dump, { at: 2, strict: false })
    expect(run.divergence).toBeInstanceOf(ReplayDivergence)
    expect(run.divergence?.detail?.kind).toBe('beyond')
    const msg = run.divergence!.message
    expect(msg).not.toMatch(/changed|record it again/)
    expect(msg).toMatch(/at: 2/)
    expect(msg).toMatch(/clock\.now/)
    await expect(replay(three, dump, { at: 2 })).rejects.toThrow(/at: 2/)
  })
})
