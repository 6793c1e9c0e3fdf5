/**
 * A lost replicated weave whose journal stream an operator deleted before any takeover: the
 * survivor says once, with its code and what to do, that it cannot take it over, and tries again
 * rarely (each minute), not each second with a line each time; `raiment weaves` says so too.
 * Started again on its own disk, the weave runs on. Its head deleted too, the same code is said
 * (RAIMENT_JOURNAL_STREAM_GONE), not the question put to a weave never replicated. Real
 * processes, on the broker.
 */
import amqp from 'amqplib'
import { describe, expect, test } from 'vitest'
import { genStream } from '../src/replication/records.js'
import { readHead } from '../src/replication/streams.js'
import { AMQP_URL, brokerUp, CI, brokerTests } from './support/broker.js'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { replicatedPair } from './support/replicated-pair.js'

const SLOW = 120_000
/** How long the survivor is watched for another attempt: the old retry came each 1–2 s. */
const WATCH_MS = 6_000

describe.skipIf(!brokerUp && !CI)('a lost weave whose journal stream is gone', () => {
  const cleanups = brokerTests()

  test('is said once, with its code and what to do, and not tried again each second', async () => {
    const { ns, x, h, dirX, xArgs, procs } = await replicatedPair(cleanups)
    x.child.kill('SIGKILL')
    await x.ended
    // The operator deletes x's generation stream (its head stays, naming it).
    await deleteStreams(ns, { head: false })
    const gone = 'RAIMENT_JOURNAL_STREAM_GONE'
    await h.until((out) => out.includes(gone) || out.split('taking over weave x failed').length >= 3)
    const out = (): string => h.stdout + h.stderr
    expect(out()).toMatch(/RAIMENT_JOURNAL_STREAM_GONE: weave x cannot be taken over: .*does not exist.*start it again on its own disk/)
    expect(out()).toContain(`rabbitmqctl delete_queue ${ns}.journal.x)`)
    expect(out()).not.toContain('while it was read')
    // An absence: watched for a while, in which the old code tried again several times.
    await new Promise((r) => setTimeout(r, WATCH_MS))
    expect(out().split(gone).length - 1).toBe(1)
    expect(out().split('taking it over').length - 1).toBe(1)
    expect(out()).not.toContain('trying again')
    // An operator who looks is told too, with the code: weave h's heartbeats say it.
    const look = await raiment(dirX, 'weaves', '--amqp', AMQP_URL, '--namespace', ns)
    expect(look.code, look.stderr).toBe(0)
    expect(look.stderr).toContain('RAIMENT_JOURNAL_STREAM_GONE: weave x (replicated) is silent, and cannot be taken over: weave h found its journal stream gone. Its threads are in its own journal file only: start it again on its own disk (raiment start --replicate --id x --db ITS_FILE)')
    const json = await raiment(dirX, 'weaves', '--amqp', AMQP_URL, '--namespace', ns, '--json')
    expect((JSON.parse(json.stdout) as Array<{ id: string }>).find((w) => w.id === 'x')).toEqual({ id: 'x', silent: true, replicated: true, takeoverAfterMs: expect.any(Number), streamGone: true, streamGoneSeenBy: 'h' })
    // Started again on its own disk, it runs on (it writes a new generation from its file).
    const x2 = raimentProcess(dirX, xArgs)
    procs.push(x2)
    await x2.until((o) => o.includes(`joined namespace '${ns}'`))
    expect(h.child.exitCode).toBe(null)
  }, SLOW)

  test('with its head deleted too: said as RAIMENT_JOURNAL_STREAM_GONE, not as a weave never replicated', async () => {
    const { ns, x, h } = await replicatedPair(cleanups)
    x.child.kill('SIGKILL')
    await x.ended
    await deleteStreams(ns, { head: true })
    await h.until((out) => out.includes('cannot be taken over') || out.split('taking over weave x failed').length >= 3)
    const out = h.stdout + h.stderr
    expect(out).toContain(
      `raiment: RAIMENT_JOURNAL_STREAM_GONE: weave x cannot be taken over: its journal stream is gone (its head stream ${ns}.journal.x is missing or names no generation, though the weave replicated: deleted by an operator, or lost with the broker nodes that held it; nothing can be rebuilt from it). Its threads are in its own journal file only now: start it again on its own disk`,
    )
    expect(out).toContain(`(rabbitmqctl delete_queue ${ns}.journal.x)`)
    expect(out).not.toContain('RAIMENT_NO_JOURNAL_STREAM')
    expect(out).not.toContain('was it started with --replicate')
  }, SLOW)
})

/** As an operator: deletes weave x's current generation stream, and with `head` its head stream too. */
async function deleteStreams(ns: string, o: { head: boolean }): Promise<void> {
  const conn = await amqp.connect(AMQP_URL)
  try {
    const head = await readHead(conn, ns, 'x')
    expect(head).not.toBe(null)
    const ch = await conn.createChannel()
    await ch.deleteQueue(genStream(ns, 'x', head!.gen))
    if (o.head) await ch.deleteQueue(`${ns}.journal.x`)
    await ch.close()
  } finally {
    await conn.close()
  }
}
