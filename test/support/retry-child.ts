/**
 * The weave process of the retry crash test:
 *   node --conditions=raiment-source --import tsx test/support/retry-child.ts DIR URL
 * where DIR holds `plan.json` (one KeyPlan per thread) and URL is the flaky service. It opens
 * `DIR/weave.db` (durability 'sync', resuming what was running), spawns one `flaky` thread per
 * key on the first run, prints `pid <pid>`, `started resumed=<n>`, `end <id> <status>` as threads
 * end and `all-done` once every thread has ended, then exits 0. The test SIGKILLs it by pid.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Weave } from 'raiment'
import { say, superviseChild } from './child-weave.js'
import { flaky, type KeyPlan } from './retry-plan.js'

const [dir, url] = process.argv.slice(2)
if (!dir || !url) throw new Error('usage: retry-child.ts DIR URL')
say(`pid ${process.pid}`)

const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as KeyPlan[]
const weave = await Weave.open({ db: join(dir, 'weave.db'), weaveId: 'retry', durability: 'sync', threads: { flaky }, ioLibs: false, dumps: false })
await superviseChild(weave, plan.length, () => {
  for (const k of plan) weave.spawn('flaky', { url, fail: k.fail })
})
