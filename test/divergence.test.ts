/**
 * Divergence: when a thread asks for something other than what its record holds (its code or
 * inputs changed), a strict replay throws ReplayDivergence naming the request and the recorded
 * one; a resume fails the thread the same way, or, told to, continues live.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { dumpText, makeDump, ReplayDivergence, thread, Weave, type AnyThreadType, type ThreadEnd } from 'raiment'
import { readDump, record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    dv: {
      step(name: string, n?: number): Promise<string>
      /** Never answers: holds a thread running until its weave closes. */
      gate(): Promise<never>
    }
  }
}

function dvLib() {
  const seen: string[] = []
  return {
    seen,
    lib: {
      async step(name: string, n = 0) {
        seen.push(name)
        return `${name}:${n}`
      },
      gate(): Promise<never> {
        seen.push('gate')
        return new Promise(() => {})
      },
    },
  }
}

const recordOpts = () => ({ libraries: { dv: dvLib().lib }, ioLibs: false as const, name: 'orders' })

const original = thread({
  uses: ['dv'],
  async does(p: { n: number }) {
    const a = await this.dv.step('reserve', p.n)
    const [b, c] = await Promise.all([this.dv.step('price', p.n), this.dv.step('stock', p.n)])
    const d = await this.dv.step('charge', p.n)
    return [a, b, c, d]
  },
})

/** The original's calls, its charge asked with `charge(n)` rather than `n`. */
const chargingWith = (charge: (n: number) => number) =>
  thread({
    uses: ['dv'],
    async does(p: { n: number }) {
      await this.dv.step('reserve', p.n)
      await Promise.all([this.dv.step('price', p.n), this.dv.step('stock', p.n)])
      return this.dv.step('charge', charge(p.n))
    },
  })

async function divergence(t: AnyThreadType, dump: Parameters<typeof replay>[1]): Promise<ReplayDivergence> {
  const err = await replay(t, dump, { ioLibs: false }).then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ReplayDivergence)
  expect((err as ReplayDivergence).code).toBe('RAIMENT_REPLAY_DIVERGENCE')
  return err as ReplayDivergence
}

describe('strict replay of a changed thread body', () => {
  it('replays the unchanged body', async () => {
    const { dump, result } = await record(original, { n: 1 }, recordOpts())
    const run = await replay(original, dump, { ioLibs: false })
    expect(run.result).toEqual(result)
    expect(run.calls.map((c) => c.call)).toEqual(['dv.step', 'dv.step', 'dv.step', 'dv.step'])
  })

  it('new code that throws before its record ends: the divergence says what it threw, and where', async () => {
    const { dump } = await record(original, { n: 1 }, recordOpts())
    const throws = thread({
      uses: ['dv'],
      async does(p: { n: number }) {
        await this.dv.step('reserve', p.n)
        return (p as unknown as { sku: string }).sku.toUpperCase()
      },
    })
    const e = await divergence(throws, dump)
    expect(e.message).toMatch(/which it never asked for\. It threw TypeError: Cannot read properties of undefined \(reading 'toUpperCase'\) \(at .*divergence\.test\.ts:\d+:\d+\)\./)
  })

  it('a changed argument: names the request made and the one recorded', async () => {
    const { dump } = await record(original, { n: 1 }, recordOpts())
    const e = await divergence(chargingWith((n) => n * 100), dump)
    expect(e.message).toContain(`thread ${dump.thread.id} (orders)`)
    expect(e.message).toContain('dv.step("charge",100)')
    expect(e.message).toContain('the record holds dv.step("charge",1)')
    expect(e.message).toContain('deterministic')
  })

  it('an argument plain JSON cannot hold (NaN) is named as the code writes it, not as it is encoded', async () => {
    const { dump } = await record(original, { n: 1 }, recordOpts())
    const e = await divergence(chargingWith(() => Number('oops')), dump)
    expect(e.message).toContain('dv.step("charge",NaN)')
    expect(e.message).not.toContain('"json"')
  })

  it('a call past the end of the record: says where the record ends, and that a fix is run live to see the rest', async () => {
    const { dump } = await record(original, { n: 1 }, recordOpts())
    const more = thread({
      uses: ['dv'],
      async does(p: { n: number }) {
        const a = await this.dv.step('reserve', p.n)
        const [b, c] = await Promise.all([this.dv.step('price', p.n), this.dv.step('stock', p.n)])
        const d = await this.dv.step('charge', p.n)
        await this.dv.step('receipt', p.n)
        return [a, b, c, d]
      },
    })
    const e = await divergence(more, dump)
    expect(e.detail).toMatchObject({ kind: 'beyond', index: 4 })
    expect(e.message).toContain('the record holds no outcome for dv.step("receipt",1) (ordinal 0): it ends after its 4 outcomes, as far as the recorded run went.')
    expect(e.message).toContain('a replay goes no further than its record, so run the new code live to see the rest')
  })

  it('a different method, or a call inserted: names both', async () => {
    const { dump } = await record(original, { n: 2 }, recordOpts())
    const inserted = thread({
      uses: ['dv'],
      async does(p: { n: number }) {
        await this.dv.step('reserve', p.n)
        await this.dv.step('audit', p.n)
        return 'x'
      },
    })
    const e = await divergence(inserted, dump)
    expect(e.message).toContain('dv.step("audit",2)')
    expect(e.message).toMatch(/the record holds dv\.step\("(price|stock)",2\)/)
    // The nearest recorded requests are shown to help find the change.
    expect(e.message).toContain('Nearest recorded requests')

    const gated = thread({
      uses: ['dv'],
      async does(p: { n: number }) {
        await this.dv.step('reserve', p.n)
        return this.dv.gate()
      },
    })
    const g = await divergence(gated, dump)
    expect(g.message).toContain('dv.gate()')
  })

  it('two sequential calls reordered: names the recorded call not made and the call the thread waits on', async () => {
    const { dump } = await record(original, { n: 9 }, recordOpts())
    // The record's first outcome is reserve; this body asks for charge first and waits on it.
    const reordered = thread({
      uses: ['dv'],
      async does(p: { n: number }) {
        const d = await this.dv.step('charge', p.n)
        const a = await this.dv.step('reserve', p.n)
        return [a, d]
      },
    })
    const e = await divergence(reordered, dump)
    expect(e.message).not.toContain('made no further request')
    expect(e.message).toContain('the record holds dv.step("reserve",9) (ordinal 0) as outcome #1 of 4 (seq 0)')
    expect(e.message).toContain('it is waiting on dv.step("charge",9) (ordinal 0, recorded later as outcome #4)')
    expect(e.message).toMatch(/Recorded requests it has not made: dv\.step\("reserve",9\) \(ordinal 0\); dv\.step\("(price|stock)",9\)/)
    expect(e.message).toContain('make it before dv.step("charge",9) again')
  })

  it('a thread waiting on several reordered calls names each, and long arguments are cut short', async () => {
    const long = 'x'.repeat(500)
    const two = thread({
      uses: ['dv'],
      async does() {
        return [await this.dv.step('a'), await this.dv.step(long), await this.dv.step('c')]
      },
    })
    const { dump } = await record(two, undefined, recordOpts())
    const swapped = thread({
      uses: ['dv'],
      async does() {
        return await Promise.all([this.dv.step('c'), this.dv.step(long)])
      },
    })
    const e = await divergence(swapped, dump)
    expect(e.message).toContain('it is waiting on dv.step("c") (ordinal 0, recorded later as outcome #3); dv.step("xxx')
    expect(e.message).toContain('…') // the long argument, shortened
    expect(e.message).not.toContain(long)
    expect(e.message).toContain('Recorded requests it has not made: dv.step("a") (ordinal 0).')
  })

  it('a thread that waits on something other than a weft call still says it made no further request', async () => {
    const { dump } = await record(original, { n: 10 }, recordOpts())
    const stuck = thread({
      uses: ['dv'],
      async does(p: { n: number }) {
        await this.dv.step('reserve', p.n)
        await new Promise(() => {})
      },
    })
    const e = await divergence(stuck, dump)
    expect(e.message).toMatch(/the record holds dv\.step\("(price|stock)",10\) \(ordinal 0\) as outcome #2 of 4 \(seq 1\), but the thread made no further request\. Last matched: dv\.step\("reserve",10\)\./)
  })

  it('a call removed: the thread ends with recorded outcomes it never asked for', async () => {
    const { dump } = await record(original, { n: 3 }, recordOpts())
    const shorter = thread({
      uses: ['dv'],
      async does(p: { n: number }) {
        return this.dv.step('reserve', p.n)
      },
    })
    const e = await divergence(shorter, dump)
    expect(e.message).toContain('never asked for')
    expect(e.message).toMatch(/dv\.step\("(price|stock)",3\)/)
  })

  it('strict: false returns the divergence instead of throwing it', async () => {
    const { dump } = await record(original, { n: 4 }, recordOpts())
    const changed = thread({ uses: ['dv'], async does() { return this.dv.step('other') } })
    const run = await replay(changed, dump, { ioLibs: false, strict: false })
    expect(run.status).toBe('failed')
    expect(run.divergence).toBeInstanceOf(ReplayDivergence)
    expect(run.divergence?.message).toContain('dv.step("other")')
  })
})

describe('an edited dump', () => {
  it('a request edited in the dump file no longer matches the thread: ReplayDivergence', async () => {
    const { dump } = await record(original, { n: 5 }, recordOpts())
    const text = dumpText(dump)
    expect(text).toContain('"charge"')
    const edited = text.replace('"charge"', '"refund"')
    const e = await divergence(original, edited)
    expect(e.message).toContain('dv.step("charge",5)')
    expect(e.message).toContain('dv.step("refund",5)')
  })

  it('an edited argument of a concurrent call, and an edited ordinal, are caught too', async () => {
    const { dump } = await record(original, { n: 6 }, recordOpts())
    const args = structuredClone(dump)
    const price = args.entries.find((e) => e.args[0] === 'price')!
    price.args = ['price', 7]
    const e = await divergence(original, args)
    expect(e.message).toContain('dv.step("price",6)')

    const ord = structuredClone(dump)
    ord.entries[0]!.ord = 1
    await divergence(original, ord)
  })

  it('an edited outcome is what the replay returns: the dump alone answers', async () => {
    const { dump } = await record(original, { n: 8 }, recordOpts())
    const text = dumpText(dump).replaceAll('"charge:8"', '"charge:edited"')
    const run = await replay(original, readDump(text), { ioLibs: false })
    expect(run.result).toEqual(['reserve:8', 'price:8', 'stock:8', 'charge:edited'])
  })
})

describe('resume after the code changed', () => {
  const v1 = thread({
    uses: ['dv'],
    async does() {
      const a = await this.dv.step('a')
      const b = await this.dv.step('b')
      await this.dv.gate()
      return [a, b]
    },
  })
  const v2 = thread({
    uses: ['dv'],
    async does() {
      const a = await this.dv.step('a')
      const x = await this.dv.step('x')
      const b = await this.dv.step('b')
      return [a, x, b]
    },
  })

  /** Runs v1 until it waits at the gate (two outcomes recorded), then closes its weave. */
  async function leaveRunning(dir: string): Promise<string> {
    const lib = dvLib()
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: v1 }, libraries: { dv: lib.lib }, ioLibs: false, dumps: false })
    const id = weave.spawn('t')
    const started = new Promise<void>((resolve) => {
      const poll = (): void => void (lib.seen.includes('gate') ? resolve() : setImmediate(poll))
      poll()
    })
    await started
    expect(weave.journal.entries(id)).toHaveLength(2)
    await weave.close()
    return id
  }

  it('fails the thread with ReplayDivergence naming the call, and writes its dump', async () => {
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const lib = dvLib()
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: v2 }, libraries: { dv: lib.lib }, ioLibs: false, dumps: join(dir, 'dumps') })
    expect(weave.resumed).toBe(1)
    const end = (await weave.join(id)) as Extract<ThreadEnd, { status: 'failed' }>
    expect(end.status).toBe('failed')
    expect(end.error).toBeInstanceOf(ReplayDivergence)
    expect(end.error.message).toContain('dv.step("x")')
    expect(end.error.message).toContain('the record holds dv.step("b")')
    // Nothing of the changed code ran live.
    expect(lib.seen).toEqual([])
    await weave.close()
    expect(existsSync(weave.dumpPath(id)!)).toBe(true)
  })

  it('a resume of reordered calls fails naming the call the thread waits on', async () => {
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const swapped = thread({
      uses: ['dv'],
      async does() {
        const b = await this.dv.step('b')
        const a = await this.dv.step('a')
        return [a, b]
      },
    })
    const lib = dvLib()
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: swapped }, libraries: { dv: lib.lib }, ioLibs: false, dumps: false })
    const end = (await weave.join(id)) as Extract<ThreadEnd, { status: 'failed' }>
    expect(end.error).toBeInstanceOf(ReplayDivergence)
    expect(end.error.message).toContain('the record holds dv.step("a") (ordinal 0) as outcome #1 of 2 (seq 0), but the thread has not asked for it: it is waiting on dv.step("b") (ordinal 0, recorded later as outcome #2)')
    expect(lib.seen).toEqual([])
    await weave.close()
  })

  it("with onDivergence: 'continue', continues live from where the record stops matching, and warns of it", async () => {
    const warnings: Array<Error & { code?: string }> = []
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const lib = dvLib()
    const weave = await Weave.open({
      db: join(dir, 'w.db'),
      durability: 'memory',
      threads: { t: v2 },
      libraries: { dv: lib.lib },
      ioLibs: false,
      dumps: false,
      onDivergence: 'continue',
      onWarning: (w) => warnings.push(w),
    })
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: ['a:0', 'x:0', 'b:0'] })
    // 'a' came from the record; 'x' and 'b' ran live (the record's 'b' no longer matched).
    expect(lib.seen).toEqual(['x', 'b'])
    // Said once, with what it dropped and made live.
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ code: 'RAIMENT_REPLAY_DIVERGENCE' })
    expect(warnings[0]!.message).toMatch(
      new RegExp(`^thread ${id} \\(t\\) diverged from its record: the record holds dv\\.step\\("b"\\) \\(ordinal 0\\) as outcome #2 of 2 \\(seq 1\\), but the thread asked for dv\\.step\\("x"\\).* It goes on live \\(on-divergence continue\\): the entries its code no longer asks for are dropped`),
    )
    await weave.committed()
    const keys = weave.journal.entries(id).map(([, key, ord]) => [key, ord])
    // 'b' live is its first call: ordinal 0 (the record's 'b', dropped, counts for nothing).
    expect(keys).toEqual([
      ['dv.step:["a"]', 0],
      ['dv.step:["x"]', 0],
      ['dv.step:["b"]', 0],
    ])
    await weave.close()
  })

  it("with onDivergence: 'continue', a thread that ends before the end of its record warns, and its record is cut there", async () => {
    const warnings: Error[] = []
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const short = thread({
      uses: ['dv'],
      async does() {
        return [await this.dv.step('a')]
      },
    })
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: short }, libraries: { dv: dvLib().lib }, ioLibs: false, dumps: false, onDivergence: 'continue', onWarning: (w) => warnings.push(w) })
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: ['a:0'] })
    expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/diverged from its record: the thread ended, but the record holds dv\.step\("b"\) \(ordinal 0\) as outcome #2 of 2 \(seq 1\), which it never asked for\. Its end stands \(on-divergence continue\): the entries it never asked for are dropped from its record$/)])
    await weave.committed()
    expect(weave.journal.entries(id).map(([, key]) => key)).toEqual(['dv.step:["a"]'])
    await weave.close()
  })

  it("with onDivergence: 'continue', reordered calls: a call of an entry dropped behind the replay runs live", async () => {
    const dir = tempDir()
    const first = dvLib()
    const abc = thread({
      uses: ['dv'],
      async does() {
        const out = [await this.dv.step('a'), await this.dv.step('b'), await this.dv.step('c')]
        await this.dv.gate()
        return out
      },
    })
    const recorded = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: abc }, libraries: { dv: first.lib }, ioLibs: false, dumps: false })
    const id = recorded.spawn('t')
    await new Promise<void>((resolve) => {
      const poll = (): void => void (first.seen.includes('gate') ? resolve() : setImmediate(poll))
      poll()
    })
    await recorded.close()
    const bac = thread({
      uses: ['dv'],
      async does() {
        const b = await this.dv.step('b')
        const a = await this.dv.step('a')
        return [a, b, await this.dv.step('c')]
      },
    })
    const lib = dvLib()
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: bac }, libraries: { dv: lib.lib }, ioLibs: false, dumps: false, passivateAfter: false, onDivergence: 'continue' })
    try {
      // 'a', recorded first, was dropped when the thread asked for 'b'; asked for next, while 'c'
      // is still to replay, it runs live (it hung, matched to the dropped entry).
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: ['a:0', 'b:0', 'c:0'] })
      expect(lib.seen).toEqual(['a', 'c'])
      await weave.committed()
      expect(weave.journal.entries(id).map(([, key]) => key)).toEqual(['dv.step:["b"]', 'dv.step:["a"]', 'dv.step:["c"]'])
    } finally {
      await weave.close()
    }
  })

  it("with onDivergence: 'continue', a receive the new code no longer makes gives its message back", async () => {
    const file = join(tempDir(), 'w.db')
    const v1 = thread({
      uses: ['mailbox'],
      async does() {
        await this.mailbox.receive()
        return await this.mailbox.receive({ match: { never: true } })
      },
    })
    const changed = thread({
      uses: ['mailbox'],
      async does() {
        return await this.mailbox.receive({ match: { x: 1 }, timeout: 5_000 })
      },
    })
    const open = (t: AnyThreadType): Promise<Weave> =>
      Weave.open({ db: file, durability: 'memory', threads: { t }, ioLibs: false, dumps: false, passivateAfter: false, onDivergence: 'continue' })
    const w1 = await open(v1)
    const id = w1.spawn('t')
    w1.send(id, { x: 1 })
    await expect.poll(() => w1.journal.entries(id).length).toBe(1)
    await w1.close()
    // The record's take (of { x: 1 }) is not made by the new code: dropped, its message goes back.
    const w2 = await open(changed)
    try {
      expect(await w2.join(id)).toMatchObject({ status: 'done', result: { x: 1 } })
    } finally {
      await w2.close()
    }
  })

  it("after continuing past a divergence, the thread's journal replays strictly with the new code", async () => {
    for (const changed of [v2, thread({ uses: ['dv'], async does() { return [await this.dv.step('a')] } })]) {
      const dir = tempDir()
      const id = await leaveRunning(dir)
      const weave = await Weave.open({
        db: join(dir, 'w.db'),
        durability: 'memory',
        threads: { t: changed },
        libraries: { dv: dvLib().lib },
        ioLibs: false,
        dumps: false,
        onDivergence: 'continue',
      })
      const end = await weave.join(id)
      expect(end.status).toBe('done')
      await weave.committed()
      const run = await replay(changed, makeDump(weave.journal, id), { ioLibs: false })
      expect(run.result).toEqual((end as Extract<ThreadEnd, { status: 'done' }>).result)
      await weave.close()
    }
  })

  it('a call added after everything recorded is not a divergence: it runs live', async () => {
    const dir = tempDir()
    const id = await leaveRunning(dir)
    const lib = dvLib()
    const v3 = thread({
      uses: ['dv'],
      async does() {
        const a = await this.dv.step('a')
        const b = await this.dv.step('b')
        const c = await this.dv.step('c')
        return [a, b, c]
      },
    })
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: v3 }, libraries: { dv: lib.lib }, ioLibs: false, dumps: false })
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: ['a:0', 'b:0', 'c:0'] })
    expect(lib.seen).toEqual(['c'])
    await weave.close()
  })
})
