/**
 * `raiment restore --from ID --db FILE` and a weave started on FILE while it rebuilds: the
 * rebuilt file is put in place under FILE's owner lock, so that weave is refused, not left
 * running on a file replaced under it (the restore looked for FILE, then renamed onto it).
 * Made deterministic with the stop point `rebuild-checked` (src/crash-points.ts). Real processes,
 * on the broker.
 */
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { Journal } from '../src/journal.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, brokerTests } from './support/broker.js'
import { raimentProcess, THREADS } from './support/raiment-process.js'
import { removeReplNamespace } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

const SLOW = 120_000

describe.skipIf(!brokerUp && !CI)('raiment restore and a weave that starts on its file meanwhile', () => {
  const cleanups = brokerTests()

  test('the weave is refused (RAIMENT_JOURNAL_OWNED); the restored file is in place', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeReplNamespace(AMQP_URL, ns, ['d']))
    const first = raimentProcess(dir, ['start', '--replicate', '--amqp', AMQP_URL, '--namespace', ns, '--id', 'd', '--heartbeat', '100', '--threads', THREADS, '--db', join(dir, 'd.db')])
    await first.until((out) => out.includes(`joined namespace '${ns}'`))
    first.child.kill('SIGTERM')
    expect((await first.ended).code).toBe(0)
    const file = join(dir, 'r.db')
    const restore = raimentProcess(dir, ['restore', '--from', 'd', '--db', file, '--amqp', AMQP_URL, '--namespace', ns], { env: { RAIMENT_STOP_AT: 'rebuild-checked' } })
    let weave: ReturnType<typeof raimentProcess> | null = null
    try {
      await restore.until((out) => out.includes('raiment: stopped at rebuild-checked'))
      weave = raimentProcess(dir, ['start', '--db', file, '--threads', THREADS])
      const up = await weave.until((out) => /^weave \S+ on /m.test(out)).then(() => true, () => false)
      expect(up, 'a weave runs on the file the restore is about to replace').toBe(false)
      expect(weave.stderr).toMatch(/^raiment: RAIMENT_JOURNAL_OWNED: /m)
      restore.child.kill('SIGCONT')
      const done = await restore.ended
      expect(done.code, done.stderr).toBe(0)
      const j = new Journal(file, { readonly: true })
      expect(j.weaveId).toBe('d')
      j.close()
    } finally {
      restore.child.kill('SIGCONT')
      weave?.child.kill('SIGTERM')
      await Promise.all([restore.ended, weave?.ended])
    }
  }, SLOW)
})
