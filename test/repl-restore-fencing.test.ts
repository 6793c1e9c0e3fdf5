/**
 * One journal, two owners: weave a (a replicated weave process, test/support/repl-child.ts) is
 * frozen (SIGSTOP) in the middle of a saga of effect calls; its journal is restored from its
 * stream into another file (`raiment restore`'s rebuild) and a weave started on that file (its
 * lease free once the broker dropped the frozen one's connection) finishes the saga, then stops
 * (SIGTERM: the lease is free again). Let run again (SIGCONT), the frozen weave must find that
 * another ran its journal: the restored weave wrote a new epoch, so it is fenced (exit 3, its one
 * `RAIMENT_FENCED` line), makes no effect call again and leaves the stream's head as the
 * restored weave left it. (Before every start took a new epoch, the restored weave ran at the
 * frozen one's epoch: let run again, that one took its lease back, found its own epoch, wrote a
 * new generation over the head, "its stream gone", and ran the saga again from its stale point.)
 * Synchronisation is on the children's output lines and the effects service's requests.
 */
import { join } from 'node:path'
import amqp from 'amqplib'
import { beforeAll, describe, expect, it } from 'vitest'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { readHead, type Head } from '../src/replication/streams.js'
import { AMQP_URL, brokerUp, CI, requireBroker } from './support/broker.js'
import { deadline, freshRun, startReplWeave, tearDown, type WeaveProc } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

const STEPS = 120
/** The saga's call at which the first weave is frozen (its request counted, not yet answered). */
const FREEZE_AT = 20

describe.skipIf(!brokerUp && !CI)('a restored journal started while its weave is frozen', () => {
  beforeAll(requireBroker)

  it('fences the frozen weave when it runs again: exit 3, no call made again, the head untouched', async () => {
    const { ns, effects } = await freshRun(['a'])
    const procs: WeaveProc[] = []
    const saga = `a/3`
    const doneBy = new Map<WeaveProc, (line: string) => void>()
    const onLine = (p: WeaveProc, line: string): void => {
      if (line.startsWith(`done ${saga} `)) doneBy.get(p)?.(line)
    }
    const start = (dir: string): { p: WeaveProc; done: Promise<string> } => {
      const p = startReplWeave({ dir, id: 'a', ns, url: AMQP_URL, peers: [], count: 1, steps: STEPS, effects: effects.url, env: { REPL_TAKEOVER_MS: '2000' } }, onLine)
      procs.push(p)
      return { p, done: new Promise((r) => doneBy.set(p, r)) }
    }
    let frozen: () => void = () => {}
    const stopped = new Promise<void>((r) => (frozen = r))
    try {
      const first = start(tempDir())
      effects.onRequest = () => {
        if (effects.requests.size < FREEZE_AT) return
        effects.onRequest = null
        first.p.proc.kill('SIGSTOP')
        frozen()
      }
      const bound = deadline(75_000, procs, 'the restore-fencing run')
      try {
        await Promise.race([stopped, bound.promise])
        // `raiment restore --from a --db DIR/a.db`, then a weave started on it.
        const dir = tempDir()
        await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'a', file: join(dir, 'a.db') })
        const second = start(dir)
        const quit = second.p.exited.then((e): never => {
          throw new Error(`the restored weave exited (${JSON.stringify(e)}) before the saga ended: ${second.p.lines.filter((l) => !l.startsWith('done ')).join(' | ')} ${second.p.stderr}`)
        })
        const answers = await Promise.race([second.done, quit, bound.promise])
        expect(JSON.parse(answers.slice(`done ${saga} `.length)), 'the saga, finished by the restored weave').toEqual(Array.from({ length: STEPS }, (_, i) => `charged:a-${i}`))
        const headThen = await head(ns)
        quit.catch(() => {})
        second.p.proc.kill('SIGTERM')
        expect(await Promise.race([second.p.exited, bound.promise])).toEqual({ code: 0, signal: null })
        const requests = new Map(effects.requests)
        const before = first.p.lines.length
        // Let run again, the lease free: it must find the journal ran elsewhere.
        first.p.proc.kill('SIGCONT')
        const end = await Promise.race([first.p.exited, first.done.then((l) => ({ ranTheSagaAgain: l })), bound.promise])
        const after = first.p.lines.slice(before)
        expect(end, `${after.join('\n')}\n${first.p.stderr}`).toEqual({ code: 3, signal: null })
        const fenced = after.filter((l) => l.startsWith('fenced '))
        expect(fenced, after.join('\n')).toHaveLength(1)
        expect(fenced[0]).toMatch(/^fenced raiment: RAIMENT_FENCED: weave 'a' .*epoch 2.*epoch 1/)
        expect(after.filter((l) => l.startsWith('done ') || l.includes('RAIMENT_JOURNAL_STREAM_GONE')), after.join('\n')).toEqual([])
        // No effect call made again after SIGCONT (counted per call id), and the head as the restored weave left it.
        expect(new Map(effects.requests)).toEqual(requests)
        expect(await head(ns)).toMatchObject({ gen: headThen.gen, epoch: headThen.epoch, rseq: headThen.rseq })
        expect(headThen.epoch).toBe(2)
      } finally {
        bound.clear()
      }
      expect(effects.done.size).toBe(STEPS)
    } finally {
      effects.onRequest = null
      await tearDown(procs, AMQP_URL, ns, ['a'], effects)
    }
  }, 100_000)
})

async function head(ns: string): Promise<Head> {
  const conn = await amqp.connect(AMQP_URL)
  try {
    const h = await readHead(conn, ns, 'a')
    expect(h).not.toBeNull()
    return h!
  } finally {
    await conn.close()
  }
}
