/**
 * The weave process of the conversation crash test. Run it with
 *   node --conditions=raiment-source --import tsx test/support/conversation-child.ts DIR
 * where DIR holds `plan.json` (a conversation Plan). It opens `DIR/weave.db` with durability
 * 'sync' (resuming whatever was running), spawns the conductor on the first run, and prints one
 * line per event: `started resumed=<n>`, the `call …` and `done …` lines of every live message
 * call (progress lines), `end <threadId> <status>` when a thread ends, and `all-done` once every
 * thread has ended, then exits 0. RAIMENT_CRASH_AT in its environment makes it kill itself at a
 * named point of the weft.
 */
import { readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Weave } from 'raiment'
import { announced, conductor, receiver, sender, type Plan } from './conversation-plan.js'

const dir = process.argv[2]
if (!dir) throw new Error('usage: conversation-child.ts DIR')

/** Synchronous, so a line is out before anything that follows it (a SIGKILL included). */
const say = (line: string): void => void writeSync(1, line + '\n')

const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Plan
const weave = await Weave.open({
  db: join(dir, 'weave.db'),
  durability: 'sync',
  threads: { conductor, receiver, sender },
  libraries: announced(say),
  ioLibs: false,
  dumps: false,
})
weave.on('error', (e) => say(`error ${e.message}`))

const check = async (): Promise<void> => {
  const rows = weave.journal.threads()
  if (rows.length > 0 && rows.every((r) => r.status !== 'running' && r.status !== 'pending')) {
    say('all-done')
    await weave.close()
    process.exit(0)
  }
}
weave.on('thread-end', (end) => {
  say(`end ${end.id} ${end.status}${end.status === 'failed' ? ` ${end.error.message}` : ''}`)
  // The end is durable when thread-end fires.
  void check()
})

say(`started resumed=${weave.resumed}`)
if (weave.journal.threads().length === 0) weave.spawn('conductor', plan)
else await check()
