// A replay test: the thread runs again from fixtures/greet-ada.json, a record of a real run.
// Each call gets its recorded outcome; no library is called and nothing is mocked. A change to
// the thread that makes it ask for something else fails with ReplayDivergence.
import { expect, test } from 'vitest'
import { replay } from 'raiment/testing'
import greet from '../threads/greet.ts'

test('greet replays its recorded run', async () => {
  const run = await replay(greet, 'fixtures/greet-ada.json')
  expect(run.result).toEqual({ greeted: 'ada', text: 'hello ada' })
  expect(run.calls.map((c) => c.call)).toEqual(['clock.now', 'greeting.compose', 'log.info'])
})
