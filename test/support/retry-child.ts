/**
 * The weave process of the retry crash test:
 *   node --conditions=raiment-source --import tsx test/support/retry-child.ts DIR URL
 * where DIR holds `plan.json` (one KeyPlan per thread) and URL is the flaky service. It opens
 * `DIR/weave.db` (durability 'sync', resuming what was running), spawns one `flaky` thread per
 * key on the first run, prints `pid <pid>`, `started resumed=<n>`, `end <id> <status>` as threads
 * end and `all-done` once every thread has ended, then exits 0. The test SIGKILLs it by pid.
 */
import { readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Weave } from 'raiment'
import { flaky, type KeyPlan } from './retry-plan.js'

const [dir, url] = process.argv.slice(2)
if (!dir || !url) throw new Error('usage: retry-child.ts DIR URL')

/** Synchronous, so a line is out before anything that follows it (a SIGKILL included). */
const say = (line: string): void => void writeSync(1, line + '\n')
say(`pid ${process.pid}`)

const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as KeyPlan[]
const weave = await Weave.open({ db: join(dir, 'weave.db'), weaveId: 'retry', durability: 'sync', threads: { flaky }, ioLibs: false, dumps: false })
weave.on('error', (e) => say(`error ${e.message}`))

const check = async (): Promise<void> => {
  const rows = weave.journal.threads()
  if (rows.length === plan.length && rows.every((r) => r.status !== 'running' && r.status !== 'pending')) {
    say('all-done')
    await weave.close()
    process.exit(0)
  }
}
weave.on('thread-end', (end) => {
  say(`end ${end.id} ${end.status}`)
  void check()
})

say(`started resumed=${weave.resumed}`)
if (weave.journal.threads().length === 0) for (const k of plan) weave.spawn('flaky', { url, fail: k.fail })
else await check()
