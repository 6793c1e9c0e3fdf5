/**
 * A control request (`raiment send`, `kill`, `fork`) and a SIGKILL: the answer commits with what
 * it answers, never before or after it. A real `raiment start` is killed at the crash point
 * `control-answered` (the answer queued, not yet committed; the first answer is the spawn of the
 * thread, the second the request under test); a weave started again answers the request, and
 * what the asker was told has happened, once: the message reached the thread; the thread is
 * killed; one fork is recorded. (Before, a fork's answer came in the batch after the fork, so a
 * crash between forked it again.) (Before, the answer was written at once and the send or kill a moment
 * later, in the next commit: a crash between told the asker "delivered" and lost the message.)
 */
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { sendMessage } from '../src/cli/messages.js'
import { decodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { raiment, raimentProcess, THREADS, type Running } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const T = ['--threads', THREADS]
/** Several Node processes, each loading TypeScript through tsx. */
const SLOW = 120_000

/** `raiment start` on dir/raiment.db, once it says it runs. */
async function startWeave(dir: string, env: Record<string, string> = {}): Promise<Running> {
  const weave = raimentProcess(dir, ['start', ...T], { env })
  await weave.until((out) => /^weave \S+ on raiment\.db/m.test(out))
  return weave
}

/** A listener thread spawned on the running weave; it waits up to `timeout` ms for one message. */
async function spawnListener(dir: string, timeout: number): Promise<string> {
  const r = await raiment(dir, 'spawn', 'listener', JSON.stringify({ timeout }), ...T)
  expect(r.code, r.stderr).toBe(0)
  return r.stdout.trim()
}

function threadRow(dir: string, id: string): { status: string; outcome: unknown; inbox: number; dead: number } {
  const journal = new Journal(join(dir, 'raiment.db'), { readonly: true })
  try {
    const row = journal.thread(id)!
    const count = (sql: string): number => journal.db.prepare(sql).pluck().get() as number
    return {
      status: row.status,
      outcome: row.outcome === null ? null : decodeValue(row.outcome),
      inbox: count('SELECT count(*) FROM inbox'),
      dead: count('SELECT count(*) FROM dead_letters'),
    }
  } finally {
    journal.close()
  }
}

function listeners(dir: string): string[] {
  const journal = new Journal(join(dir, 'raiment.db'), { readonly: true })
  try {
    return journal.db.prepare("SELECT id FROM threads WHERE type = 'listener' ORDER BY rowid").pluck().all() as string[]
  } finally {
    journal.close()
  }
}

describe('a control request and a SIGKILL between its answer and its commit', () => {
  test('raiment send: a message the asker is told was delivered reaches the thread, once', async () => {
    const dir = tempDir()
    const crashing = await startWeave(dir, { RAIMENT_CRASH_AT: 'control-answered:2' })
    const id = await spawnListener(dir, 20_000)
    const sent = sendMessage(join(dir, 'raiment.db'), id, { hello: 'once' }).then(
      (r) => r.result,
      (e: unknown) => e as Error,
    )
    expect((await crashing.ended).signal).toBe('SIGKILL')

    const weave = await startWeave(dir)
    // Told delivered (the new weave answered within the asker's wait): delivered, once. Told it
    // timed out (no weave owned the journal by then): withdrawn, never delivered.
    const told = await sent
    if (told instanceof Error) expect((told as { code?: string }).code).toBe('RAIMENT_SEND_TIMEOUT')
    else expect(told).toEqual({ delivered: true, to: id })
    await weave.until((out) => out.includes(`done ${id} listener`))
    weave.child.kill('SIGTERM')
    await weave.ended
    expect(threadRow(dir, id)).toEqual({ status: 'done', outcome: told instanceof Error ? { timedOut: true } : { received: { hello: 'once' } }, inbox: 0, dead: 0 })
  }, SLOW)

  test('raiment send to a weave that does not take it (stopped) times out and withdraws it: nothing is sent, and sending again is safe', async () => {
    const dir = tempDir()
    const weave = await startWeave(dir)
    try {
      const id = await spawnListener(dir, 60_000)
      weave.child.kill('SIGSTOP')
      const first = await raiment(dir, 'send', id, '"first"')
      expect(first.code).toBe(1)
      expect(first.stderr).toMatch(/^raiment: RAIMENT_SEND_TIMEOUT: .*did not take the message within 5 s; it was withdrawn, nothing was sent: send it again/m)
      weave.child.kill('SIGCONT')
      const again = await raiment(dir, 'send', id, '"again"')
      expect(again.code, again.stderr).toBe(0)
      await weave.until((out) => out.includes(`done ${id} listener`))
      expect(threadRow(dir, id)).toMatchObject({ status: 'done', outcome: { received: 'again' }, inbox: 0, dead: 0 })
    } finally {
      weave.child.kill('SIGCONT')
      weave.child.kill('SIGTERM')
      await weave.ended
    }
  }, SLOW)

  test('raiment kill: a thread the asker is told was killed is killed', async () => {
    const dir = tempDir()
    const crashing = await startWeave(dir, { RAIMENT_CRASH_AT: 'control-answered:2' })
    const id = await spawnListener(dir, 20_000)
    const kill = raiment(dir, 'kill', id)
    expect((await crashing.ended).signal).toBe('SIGKILL')

    const weave = await startWeave(dir)
    const killed = await kill
    expect(killed.stdout.trim(), killed.stderr).toBe(`killed ${id}`)
    // The answer commits with the kill: told killed, it is killed already.
    expect(threadRow(dir, id)).toMatchObject({ status: 'killed', inbox: 0, dead: 0 })
    weave.child.kill('SIGTERM')
    await weave.ended
  }, SLOW)

  test('raiment fork: one fork is recorded, the one the asker is told of', async () => {
    const dir = tempDir()
    const crashing = await startWeave(dir, { RAIMENT_CRASH_AT: 'control-answered:2' })
    const id = await spawnListener(dir, 20_000)
    const fork = raiment(dir, 'fork', id, ...T)
    expect((await crashing.ended).signal).toBe('SIGKILL')

    const weave = await startWeave(dir)
    const forked = await fork
    if (forked.code === 0) {
      expect(listeners(dir)).toEqual([id, forked.stdout.trim()])
    } else {
      // Not answered within the asker's wait: withdrawn, and nothing forked.
      expect(forked.stderr).toMatch(/^RAIMENT_FORK_TIMEOUT/m)
      expect(listeners(dir)).toEqual([id])
    }
    weave.child.kill('SIGTERM')
    await weave.ended
  }, SLOW)
})
