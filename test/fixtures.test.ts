import { describe, expect, it } from 'vitest'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { ReplayDivergence } from 'raiment'
import { readDump, replay } from 'raiment/testing'
import { loadThreadTypes } from '../src/thread-types.js'

// Recorded fixtures are kept forever, old formats included: each must still replay to what it
// recorded, with no library called.
const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = readdirSync(join(root, 'fixtures')).filter((f) => f.endsWith('.json')).sort()
const { types, unavailable } = await loadThreadTypes(join(root, 'threads'))

describe('recorded fixtures', () => {
  it('every example thread type loads', () => {
    expect([...unavailable.values()].map((e) => e.message)).toEqual([])
  })

  it('there are at least three', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(3)
  })

  for (const f of fixtures) {
    it(`${f} replays to its recorded outcome`, async () => {
      const dump = readDump(join(root, 'fixtures', f))
      const type = types.get(dump.thread.type)
      expect(type, `thread type ${dump.thread.type}`).toBeDefined()
      const run = await replay(type!, dump, { ioLibs: false })
      expect(run.calls).toHaveLength(dump.entries.length)
      if (dump.thread.status === 'done') {
        expect(run.status).toBe('done')
        expect(run.result).toEqual(dump.thread.result)
      } else {
        expect(run.status).toBe('failed')
        expect(run.error?.name).toBe(dump.thread.error?.name)
        expect(run.error?.message).toBe(dump.thread.error?.message)
      }
    })
  }

  it('an edited fixture fails replay with ReplayDivergence naming the call', async () => {
    const dump = readDump(join(root, 'fixtures', 'greet-ada.json'))
    const sleep = dump.entries.find((e) => e.call === 'clock.sleepUntil')!
    sleep.args = [(sleep.args[0] as number) + 1]
    const err = await replay(types.get('greet')!, dump, { ioLibs: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ReplayDivergence)
    expect((err as Error).message).toMatch(/clock\.sleepUntil\(\d+\)/)
  })

  it('a fixture replayed with other params diverges at the first call that depends on them', async () => {
    const dump = readDump(join(root, 'fixtures', 'greet-ada.json'))
    dump.thread.params = { name: 'grace' }
    await expect(replay(types.get('greet')!, dump, { ioLibs: false })).rejects.toThrow(/log\.info\("hello grace"/)
  })
})
