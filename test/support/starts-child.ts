/**
 * The weave process of the durable-starts test (W3 of bench:compare, one after another):
 *   node --conditions=raiment-source --import tsx test/support/starts-child.ts DIR COUNT
 * opens `DIR/weave.db` with durability 'sync' and starts COUNT one-step threads one after another,
 * each start made durable (`committed()`) before the next; thread k's step returns k, and so does
 * the thread. Prints `started <id> <k>` once a start is durable and `joined <id> <status> <result>`
 * when a join of it resolves (each thread is joined as soon as it is started), then `all-done`.
 * The test SIGKILLs it at some line.
 */
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { Weave } from 'raiment'
import { oneStep, stepsLibrary } from './starts-plan.js'

const [dir, countArg] = process.argv.slice(2)
if (!dir || !countArg) throw new Error('usage: starts-child.ts DIR COUNT')
const say = (line: string): void => void writeSync(1, line + '\n')

const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { oneStep },
  libraries: { steps: stepsLibrary },
  ioLibs: false,
  dumps: false,
})
const joins: Promise<void>[] = []
for (let k = 0; k < Number(countArg); k++) {
  const id = weave.spawn('oneStep', { k })
  await weave.committed()
  say(`started ${id} ${k}`)
  joins.push(weave.join(id).then((end) => say(`joined ${id} ${end.status} ${end.status === 'done' ? String(end.result) : ''}`)))
}
await Promise.all(joins)
say('all-done')
await weave.close()
