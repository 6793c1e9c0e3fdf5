// Raiment from this repository's TypeScript source: one weave with `sync` durability (fsync per
// group commit, the guarantee the anchors give by default) on a fresh SQLite file in a temp dir,
// removed at close. Step i is a call to the `steps` library that returns i, journaled like any I/O.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Weave, thread } from '../../src/index.js'
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
    async close() {
      await weave.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
