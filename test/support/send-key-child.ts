/**
 * The child of the keyed-send crash test: opens weave `w` on argv[2], sends `{ i: 1 }` with key
 * `k` to thread argv[3], and SIGKILLs itself either at once, before the batch holding the send
 * commits (argv[4] 'before-commit'), or once it has committed, before anyone is told
 * ('after-commit'). It prints `sent` before the kill.
 */
import { openCollecting } from './send-key-plan.js'

const [db, to, when] = process.argv.slice(2) as [string, string, string]
const weave = await openCollecting(db)
weave.send(to, { i: 1 }, { key: 'k' })
if (when === 'after-commit') await weave.committed()
process.stdout.write('sent\n')
process.kill(process.pid, 'SIGKILL')
