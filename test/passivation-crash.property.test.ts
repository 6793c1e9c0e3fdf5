/**
 * Passivation and a SIGKILL at an instant fast-check chooses: a random conversation (see
 * test/support/passivation-conversation.ts) runs in a real weave process (durability 'sync',
 * `passivateAfter: 0`) that is killed after a chosen number of thread starts and passivations,
 * then run again to its end; its result and what every thread took from its mailbox, in order,
 * are those of the same conversation run without passivation and without a crash.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Weave } from 'raiment'
import { describeRun, runChild, supportScript } from './support/child.js'
import { actor, child, conductor, conversationArb, receivedBy, type Conversation } from './support/passivation-conversation.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('passivation-conversation-child.ts')
const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['PASSIVATION_CRASH_RUNS'] ?? 5)
console.log(`passivation crash: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

async function reference(c: Conversation): Promise<unknown> {
  const weave = await Weave.open({ db: join(tempDir('raiment-passivation-ref-'), 'w.db'), durability: 'memory', threads: { conductor, actor, child }, ioLibs: false, dumps: false, passivateAfter: false })
  try {
    const end = await weave.join(weave.spawn('conductor', c))
    await weave.committed()
    return canonical({ end, received: receivedBy(weave) })
  } finally {
    await weave.close()
  }
}

/**
 * Thread ids named by the order they first appear: the weave ids differ, and a restarted weave
 * numbers the threads it spawns from a new block.
 */
function canonical(v: unknown): unknown {
  const names = new Map<string, string>()
  const text = JSON.stringify(v).replace(/[\w.-]+\/\d+/g, (id) => {
    let name = names.get(id)
    if (name === undefined) names.set(id, (name = `T${names.size}`))
    return name
  })
  return JSON.parse(text)
}

const isProgress = (line: string): boolean => line.startsWith('start ') || line.startsWith('asleep ')

describe('passivation and a SIGKILL', () => {
  it(`a conversation killed at a chosen instant and run again ends as without passivation and without a crash (${RUNS} runs, seed ${seed})`, async () => {
    let killed = 0
    await fc.assert(
      fc.asyncProperty(conversationArb, fc.integer({ min: 1, max: 40 }), async (c, at) => {
        const expected = await reference(c)
        const dir = tempDir('raiment-passivation-crash-')
        writeFileSync(join(dir, 'conversation.json'), JSON.stringify(c))
        let seen = 0
        const first = await runChild(CHILD, [dir], { killWhen: (line) => isProgress(line) && ++seen >= at })
        let last = first
        if (first.killed) {
          killed++
          last = await runChild(CHILD, [dir])
        }
        expect(last.code, describeRun(last)).toBe(0)
        const line = last.lines.find((l) => l.startsWith('result '))
        expect(line, describeRun(last)).toBeDefined()
        expect(canonical(JSON.parse(line!.slice('result '.length)))).toEqual(expected)
      }),
      { numRuns: RUNS, seed },
    )
    console.log(`passivation crash: ${killed} of ${RUNS} runs killed before their end`)
  }, 180_000)
})
