// The example of docs/testing.md "Skipping time", as it is there (test/docs-commands.test.ts checks).
import { expect, test } from 'vitest'
import { thread, TIMED_OUT } from 'raiment'
import { record, replay, testClock } from 'raiment/testing'

const DAY = 86_400_000
const reminder = thread({
  uses: ['clock', 'mailbox'],
  async does(p: { days: number }) {
    await this.clock.sleep(p.days * DAY)
    const reply = await this.mailbox.receive<string>({ timeout: DAY })
    return { at: await this.clock.now(), reply: reply === TIMED_OUT ? null : reply }
  },
})

test('a reminder sleeps 3 days, then waits a day for a reply', async () => {
  const start = Date.UTC(2026, 0, 1)
  const { dump, result } = await record(reminder, { days: 3 }, { clock: testClock(start) })
  expect(result).toEqual({ at: start + 4 * DAY, reply: null })   // recorded in milliseconds
  expect((await replay(reminder, dump)).result).toEqual(result)
})
