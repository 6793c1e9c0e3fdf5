/**
 * What the weave processes of the crash tests share (test/support/crash-child.ts,
 * retry-child.ts): lines written synchronously, so that each is out before anything that follows
 * it (a SIGKILL included); `end <id> <status>` as threads end; `all-done` once every one of the
 * `expected` threads has ended, then a clean exit 0; the threads spawned on the first run only.
 */
import { writeSync } from 'node:fs'
import type { Weave } from 'raiment'

/** Writes one line to stdout, synchronously. */
export const say = (line: string): void => void writeSync(1, line + '\n')

/**
 * Reports `weave`'s thread ends and, on its first run (an empty journal), calls `spawnAll`; ends
 * the process once `expected` threads have all ended.
 */
export async function superviseChild(weave: Weave, expected: number, spawnAll: () => void): Promise<void> {
  weave.on('error', (e) => say(`error ${e.message}`))
  const check = async (): Promise<void> => {
    const rows = weave.journal.threads()
    if (rows.length === expected && rows.every((r) => r.status !== 'running' && r.status !== 'pending')) {
      say('all-done')
      await weave.close()
      process.exit(0)
    }
  }
  weave.on('thread-end', (end) => {
    say(`end ${end.id} ${end.status}`)
    // The end is durable when thread-end fires.
    void check()
  })
  say(`started resumed=${weave.resumed}`)
  if (weave.journal.threads().length === 0) spawnAll()
  else await check()
}
