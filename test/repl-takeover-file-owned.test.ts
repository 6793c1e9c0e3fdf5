/**
 * A takeover whose file (`<dir>/<id>.taken.db`) a weave runs on already (`raiment start --db` on
 * that path, by hand): the takeover waits for the file, and never deletes it, nor its lock's
 * sidecar, under that weave. Deleting the sidecar let the takeover create and lock a new one while
 * the weave held the lock of the old: two processes owned the journal. Real processes, on the broker.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { brokerUp, CI, brokerTests } from './support/broker.js'
import { raimentProcess, THREADS } from './support/raiment-process.js'
import { replicatedPair } from './support/replicated-pair.js'

const SLOW = 120_000

describe.skipIf(!brokerUp && !CI)('a takeover whose file a weave runs on', () => {
  const cleanups = brokerTests()

  test('waits for that weave to stop: its journal and lock stay its own meanwhile', async () => {
    const { x, h, dirH, procs } = await replicatedPair(cleanups)
    // A weave on the path h would rebuild x's journal at.
    const taken = join(dirH, 'x.taken.db')
    const w = raimentProcess(dirH, ['start', '--db', taken, '--threads', THREADS])
    procs.push(w)
    await w.until((out) => /^weave \S+ on /m.test(out))
    const before = { file: statSync(taken).ino, lock: statSync(`${taken}-lock`).ino }
    x.child.kill('SIGKILL')
    // h tries, and is refused the file, naming the weave on it (again each second).
    await h.until((out) => out.split('taking over weave x failed (').length >= 3 || out.includes('took over weave x'))
    expect(h.stdout + h.stderr).toContain(`${taken} is already run by a weave in pid ${w.child.pid}`)
    expect(h.stdout + h.stderr).not.toContain('took over weave x')
    expect(w.child.exitCode).toBe(null)
    expect({ file: statSync(taken).ino, lock: statSync(`${taken}-lock`).ino }).toEqual(before)
    // Once it stops, the file is h's to replace: the takeover goes through, on the same sidecar.
    w.child.kill('SIGTERM')
    expect((await w.ended).code).toBe(0)
    await h.until((out) => out.includes('took over weave x'))
    expect(statSync(`${taken}-lock`).ino).toBe(before.lock)
  }, SLOW)
})
