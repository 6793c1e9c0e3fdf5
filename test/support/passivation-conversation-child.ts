/**
 * The weave process of the passivation crash property test:
 *   node --conditions=raiment-source --import tsx test/support/passivation-conversation-child.ts DIR
 * Opens DIR/weave.db (durability 'sync', passivateAfter 0) and, on the first run, spawns the
 * conductor of the conversation in DIR/conversation.json (test/support/passivation-conversation.ts).
 * Prints `start <id>` and `asleep <id>` as threads start (or wake) and are passivated, and once
 * the conductor has ended, `result <json>` ({ end, received }), then exits 0.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Weave, type ThreadEnd } from 'raiment'
import { say } from './child-weave.js'
import { actor, child, conductor, receivedBy, type Conversation } from './passivation-conversation.js'

const dir = process.argv[2]
if (!dir) throw new Error('usage: passivation-conversation-child.ts DIR')
const conversation = JSON.parse(readFileSync(join(dir, 'conversation.json'), 'utf8')) as Conversation

const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { conductor, actor, child },
  ioLibs: false,
  dumps: false,
  passivateAfter: 0,
})
weave.on('error', (e) => say(`error ${e.message}`))
weave.on('thread-start', (e) => say(`start ${e.id}`))
weave.on('thread-passivated', (e) => say(`asleep ${e.id}`))

const done = async (end: ThreadEnd): Promise<void> => {
  await weave.committed()
  say(`result ${JSON.stringify({ end, received: receivedBy(weave) })}`)
  await weave.close()
  process.exit(0)
}
const first = weave.journal.threads()[0]
const id = first?.id ?? weave.spawn('conductor', conversation)
await done(await weave.join(id))
