/**
 * `run.calls` of a replay names each request as it is recorded (docs/testing.md): a method that
 * runs in the thread (`mailbox.receive`, `clock.sleep`) is the calls it makes. A user trial wrote
 * a test expecting 'mailbox.receive' from the docs' example and saw 'mailbox.take'.
 */
import { describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { record, replay } from 'raiment/testing'

const hear = thread({
  uses: ['mailbox', 'log', 'clock'],
  async does() {
    const m = await this.mailbox.receive()
    await this.log.info('heard', { m })
    await this.clock.sleep(1)
    return m
  },
})

describe('the calls of a replay', () => {
  it('are named as recorded, as docs/testing.md says', async () => {
    const { dump } = await record(hear, undefined, { name: 'hear', messages: ['hi'], ioLibs: false })
    const run = await replay(hear, dump)
    expect(run.result).toBe('hi')
    expect(run.calls.map((c) => c.call)).toEqual(['mailbox.take', 'log.info', 'clock.now', 'clock.sleepUntil'])
  })
})
