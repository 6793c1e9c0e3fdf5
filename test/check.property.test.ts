/**
 * Property: for a random thread program, its record (whole, or cut where a crash could cut it),
 * and a random edit of its code (append a call, remove one, reorder two calls inside a
 * Promise.all, change an argument, insert a patch.patched branch, rename a method), the verdict
 * of `raiment check` (compatible, or diverges at entry k) is what a strict replay of the record
 * under the edited code does. Where the answer can be told without a replay it is checked
 * against that too: for straight-line programs, the first call that differs; a reorder inside a
 * Promise.all, or a patched branch inserted under a thread still running, is always compatible.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { replay } from 'raiment/testing'
import { checkThread } from '../src/check/replay-check.js'
import { makeDump } from '../src/dump.js'
import { encodeValue } from '../src/encoding.js'
import { replayParts, type ReplayParts } from '../src/libraries.js'
import type { Entry } from '../src/weft.js'
import { sharedTempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    cops: {
      run(name: string, arg: number): Promise<string>
      exec(name: string, arg: number): Promise<string>
    }
  }
}

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['CHECK_RUNS'] ?? 200)
console.log(`check: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

interface Call {
  m: 'run' | 'exec'
  name: string
  arg: number
}
type Stmt = { k: 'call'; c: Call } | { k: 'all'; cs: Call[] } | { k: 'patch'; id: string; then: Call[] }
type Prog = Stmt[]

const callArb: fc.Arbitrary<Call> = fc.record({ m: fc.constantFrom('run' as const, 'exec' as const), name: fc.constantFrom('a', 'b', 'c'), arg: fc.integer({ min: 0, max: 3 }) })
const stmtArb: fc.Arbitrary<Stmt> = fc.oneof(
  { weight: 5, arbitrary: callArb.map((c): Stmt => ({ k: 'call', c })) },
  { weight: 2, arbitrary: fc.array(callArb, { minLength: 2, maxLength: 3 }).map((cs): Stmt => ({ k: 'all', cs })) },
  { weight: 1, arbitrary: fc.record({ id: fc.constantFrom('p1', 'p2'), then: fc.array(callArb, { minLength: 1, maxLength: 2 }) }).map((p): Stmt => ({ k: 'patch', ...p })) },
)
const progArb = fc.array(stmtArb, { minLength: 1, maxLength: 6 })

type EditKind = 'append' | 'remove' | 'reorder' | 'arg' | 'patch' | 'rename'
const editArb = fc.record({
  kind: fc.constantFrom<EditKind>('append', 'remove', 'reorder', 'arg', 'patch', 'rename'),
  at: fc.nat(),
  c: callArb,
  // A new change has an id of its own (one that no branch of the old code used).
  id: fc.constant('p3'),
})

/** The calls of a program, in place (for edits). */
function calls(p: Prog): Call[] {
  return p.flatMap((s) => (s.k === 'call' ? [s.c] : s.k === 'all' ? s.cs : s.then))
}

/** `p` edited; null when the edit does not apply (no Promise.all to reorder in). */
function edit(p: Prog, e: { kind: EditKind; at: number; c: Call; id: string }): Prog | null {
  const q = structuredClone(p)
  switch (e.kind) {
    case 'append':
      q.push({ k: 'call', c: e.c })
      return q
    case 'remove':
      q.splice(e.at % q.length, 1)
      return q
    case 'reorder': {
      const alls = q.filter((s): s is Extract<Stmt, { k: 'all' }> => s.k === 'all')
      if (alls.length === 0) return null
      const s = alls[e.at % alls.length]!
      const i = e.at % s.cs.length
      const j = (i + 1) % s.cs.length
      ;[s.cs[i], s.cs[j]] = [s.cs[j]!, s.cs[i]!]
      return q
    }
    case 'arg': {
      const c = calls(q)[e.at % calls(q).length]!
      c.arg = (c.arg + 1) % 4
      return q
    }
    case 'rename': {
      const c = calls(q)[e.at % calls(q).length]!
      c.m = c.m === 'run' ? 'exec' : 'run'
      return q
    }
    case 'patch':
      q.splice(e.at % (q.length + 1), 0, { k: 'patch', id: e.id, then: [e.c] })
      return q
  }
}

type Self = { cops: { run(n: string, a: number): Promise<string>; exec(n: string, a: number): Promise<string> }; patch: { patched(id: string): Promise<boolean> } }

async function interpret(self: Self, p: Prog): Promise<string[]> {
  const out: string[] = []
  const call = (c: Call) => self.cops[c.m](c.name, c.arg)
  for (const s of p) {
    if (s.k === 'call') out.push(await call(s.c))
    else if (s.k === 'all') out.push(...(await Promise.all(s.cs.map(call))))
    else if (await self.patch.patched(s.id)) for (const c of s.then) out.push(await call(c))
  }
  return out
}

/** The recording's code: the program is its params. */
const interp = thread({
  uses: ['cops', 'patch'],
  async does(params: { prog: Prog }) {
    return interpret(this, params.prog)
  },
})

/** The edited code: the program is its code (params are ignored). */
const codeOf = (p: Prog): AnyThreadType =>
  thread({
    uses: ['cops', 'patch'],
    async does() {
      return interpret(this, p)
    },
  })

/** Answers after 0-2 ms (by argument), so the calls of a Promise.all complete in varied orders. */
const cops = {
  run: (name: string, arg: number) => new Promise<string>((res) => setTimeout(() => res(`run ${name}${arg}`), arg % 3)),
  exec: (name: string, arg: number) => new Promise<string>((res) => setTimeout(() => res(`exec ${name}${arg}`), arg % 3)),
}

type Expect = { verdict: 'compatible' } | { verdict: 'diverges'; at: number }

let weave: Weave
let parts: Map<string, ReplayParts>

beforeAll(async () => {
  weave = await Weave.open({ db: join(sharedTempDir(), 'check.db'), threads: { interp }, libraries: { cops }, ioLibs: false, durability: 'memory', dumps: false })
  parts = await replayParts(false)
})

afterAll(async () => {
  await weave.close()
})

describe('raiment check equals a strict replay of the old record under the new code', () => {
  it('for random programs, records and edits', async () => {
    await fc.assert(
      fc.asyncProperty(progArb, editArb, fc.nat(), fc.boolean(), async (prog, e, cutAt, running) => {
        const next = edit(prog, e)
        if (next === null) return
        const id = weave.spawn('interp', { prog })
        const end = await weave.join(id)
        expect(end.status).toBe('done')
        const all = weave.journal.replayEntries(id, (seq, key, ord, ok, text): Entry => ({ seq, key, ord, ok, text, call: null }))
        const cut = running ? cutAt % (all.length + 1) : all.length
        const status = running ? 'running' : 'done'
        const dump = makeDump(weave.journal, id)
        dump.entries = dump.entries.slice(0, cut)
        dump.thread.status = status
        const code = codeOf(next)

        const run = await replay(code, dump, { strict: false, ioLibs: false })
        const d = run.divergence?.detail
        const expected: Expect = d === undefined || (d.kind === 'beyond' && running) ? { verdict: 'compatible' } : { verdict: 'diverges', at: d.index }

        const { verdict } = await checkThread(code, { id, type: 'interp', status, params: encodeValue({ prog }), entries: () => all.slice(0, cut).map((x) => ({ ...x, call: null })) }, parts)
        const got: Expect = verdict.verdict === 'diverges' ? { verdict: 'diverges', at: verdict.at } : { verdict: verdict.verdict as 'compatible' }
        expect(got).toEqual(expected)

        if (e.kind === 'reorder' || (e.kind === 'patch' && running)) expect(got).toEqual({ verdict: 'compatible' })
        const plain = (p: Prog) => p.every((s) => s.k === 'call')
        if (plain(prog) && plain(next)) expect(got).toEqual(straightLine(prog, next, cut, running))
      }),
      { numRuns: RUNS, seed },
    )
  })
})

/** The verdict for programs of plain calls: the first recorded call the new code does not make. */
function straightLine(old: Prog, next: Prog, cut: number, running: boolean): Expect {
  const key = (s: Stmt) => (s.k === 'call' ? `${s.c.m}:${s.c.name}:${s.c.arg}` : '')
  for (let i = 0; i < cut; i++) {
    if (i >= next.length || key(next[i]!) !== key(old[i]!)) return { verdict: 'diverges', at: i }
  }
  return next.length > cut && !running ? { verdict: 'diverges', at: cut } : { verdict: 'compatible' }
}
