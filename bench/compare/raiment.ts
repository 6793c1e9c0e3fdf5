// Raiment from this repository's TypeScript source: one weave with `sync` durability (fsync per
// group commit, the guarantee the anchors give by default) on a fresh SQLite file in a temp dir,
// removed at close. Step i is a call to the `steps` library that returns i, journaled like any I/O.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Weave, thread } from '../../src/index.js'
import { bareRun, type Row } from '../throughput.js'
import type { Engine } from './engine.js'

declare module '../../src/index.js' {
  interface Libraries {
    steps: { step(i: number): Promise<number> }
  }
}

const steps = thread({
  uses: ['steps'],
  async does(params: { n: number }) {
    let sum = 0
    for (let i = 0; i < params.n; i++) sum += await this.steps.step(i)
    return sum
  },
})

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** Opens a weave on a fresh journal file. */
export async function open(): Promise<Engine> {
  const dir = mkdtempSync(join(tmpdir(), 'raiment-bench-'))
  const weave = await Weave.open({
    db: join(dir, 'bench.db'),
    durability: 'sync',
    threads: { steps },
    ioLibs: false, // only the bench's own library, whatever the working directory holds
    dumps: join(dir, 'dumps'),
    libraries: { steps: { async step(i: number) { return i } } },
  })

  const finish = async (id: string): Promise<number> => {
    const end = await weave.join(id)
    if (end.status !== 'done') throw new Error(`thread ${id} ended ${end.status}${end.status === 'failed' ? `: ${String(end.error)}` : ''}`)
    return end.result as number
  }

  return {
    label: `Raiment ${version} (SQLite, durability 'sync')`,
    run: (n) => finish(weave.spawn('steps', { n })),
    async start(n) {
      const id = weave.spawn('steps', { n })
      await weave.committed() // the spawn row is durable before the next start
      return () => finish(id)
    },
    async floor(n) {
      // The rows W1 recorded, committed one at a time as the weave did, by better-sqlite3 alone,
      // after the same rows of two more threads, untimed: the weave's journal has been written
      // to before each W1 run too (the warm-up, the other runs).
      const id = weave.spawn('steps', { n })
      await finish(id)
      const entries = weave.journal.entries(id)
      if (entries.length !== n) throw new Error(`thread ${id} recorded ${entries.length} steps, expected ${n}`)
      const rowsOf = (thread: string): Row[][] => entries.map(([seq, key, ord, ok, outcome, started, duration]) => [[thread, seq, key, ord, ok, outcome, started, duration]])
      return bareRun(rowsOf(id), 'sync', [...rowsOf(`${id}-warm-1`), ...rowsOf(`${id}-warm-2`)])
    },
    async close() {
      await weave.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
