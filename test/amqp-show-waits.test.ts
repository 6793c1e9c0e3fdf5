/**
 * `raiment show ID` of a thread joining a thread of another weave, on a real broker: it names the
 * weave the joined thread runs on, and whether that weave is live now, as the joining weave's
 * view of the live weaves says (heartbeats). Weaves a and b in this process, each on its own
 * journal, on a namespace of their own; b then stops.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { cliOut } from './support/cli-in-process.js'
import { openWeave } from './support/weaves.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

/** Takes one message, and returns it. */
const listener = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive()
  },
})

/** Joins `target` (a thread of any weave). */
const joiner = thread({
  uses: ['threads'],
  async does(p: { target: string }) {
    return this.threads.join(p.target)
  },
})

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'

describe.skipIf(!brokerUp && !CI)('show of a thread joining a thread of another weave', () => {
  const cleanups = brokerTests()

  it("says the other weave is live, then, once it has stopped, that it is not live now", async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const threads = { listener, joiner }
    const a = await openWeave(cleanups, dir, ns, 'a', threads, { passivateAfter: false })
    const b = await openWeave(cleanups, dir, ns, 'b', threads, { passivateAfter: false })
    const target = b.weave.spawn('listener', {})
    const id = a.weave.spawn('joiner', { target })
    // b has a's watch of its thread (a join watches under a's pseudo-thread a/~join): a's join is
    // under way (it sent the watch from it).
    const watched = b.weave.journal.db.prepare("SELECT 1 FROM watches WHERE target = ? AND watcher = 'a/~join'")
    await until(`b's watch of ${target} for a's join`, () => watched.get(target) !== undefined)
    await expect.poll(() => a.link.isLive('b'), { timeout: 10_000, interval: 20 }).toBe(true)
    const aDb = join(dir, 'a.db')
    expect(await cliOut(['show', id, '--db', aDb])).toMatch(new RegExp(`^${id}  joiner  running, waiting for the end of ${target} \\(on weave b, live\\) \\(since ${ISO}\\)  created ${ISO}\\n`))

    // b stops: its heartbeats stop, and a's view of the live weaves loses it.
    await b.close()
    await expect.poll(() => a.link.isLive('b'), { timeout: 10_000, interval: 20 }).toBe(false)
    const shown = await cliOut(['show', id, '--db', aDb])
    expect(shown).toMatch(new RegExp(`^${id}  joiner  running, waiting for the end of ${target} \\(on weave b, not live now\\) \\(since ${ISO}\\)  created ${ISO}\\n`))
    expect(JSON.parse(await cliOut(['show', id, '--db', aDb, '--json']))).toMatchObject({ waiting: { joins: target, joinsWeave: { id: 'b', live: false }, mailbox: false, until: null, calls: [] } })
  }, 60_000)
})
