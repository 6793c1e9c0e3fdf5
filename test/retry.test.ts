/**
 * Retries in a real weave (temp-dir journal) against a real flaky HTTP service on 127.0.0.1:
 * every attempt carries the call id, each failed attempt is recorded with its due time, only the
 * final outcome reaches the thread, the policy comes from the call over the thread type over the
 * library, and a replay neither retries nor waits.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgument, InvalidLibraryModule, makeDump, thread, Weave, type AnyThreadType, type ThreadEnd } from 'raiment'
import { dumpText, readDump, record, replay } from 'raiment/testing'
import { decodeError } from '../src/error-records.js'
import { callIdOfRow } from '../src/call-context.js'
import type { ThreadRow } from '../src/journal.js'
import { AttemptLog } from '../src/retry/attempts.js'
import { delayBounds, mergePolicy } from '../src/retry/policy.js'
import { pendingRetryWaits } from '../src/retry/run.js'
import { flakyServer, type FlakyServer } from './support/flaky-server.js'
import { retryAfterMs } from '../io-libs/_http-retry.js'
import { cliOut } from './support/cli-in-process.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    retryFlaky: { charge(n: number): Promise<number>; other(): Promise<number> }
    retryFlip: { flip(): Promise<string>; bad(): Promise<string> }
    retryLong: { charge(): Promise<number> }
    retryPred: { charge(): Promise<number> }
  }
}

let server: FlakyServer
beforeAll(async () => {
  server = await flakyServer()
})
afterAll(async () => {
  await server.close()
})

const FAST = { initialInterval: 20, backoffCoefficient: 2, maximumInterval: 50, jitter: 0 }

interface Ran {
  end: ThreadEnd
  attempts: ReturnType<AttemptLog['ofThread']>
  entries: Array<[number, string, number, 0 | 1, string, number, number]>
  db: string
  id: string
  /** The thread's row (for its call ids). */
  row: ThreadRow
  /** The call ids with failed attempts the weave still kept in memory at the thread's end. */
  kept: number
}

let weaves = 0

async function run(type: AnyThreadType, params: unknown, libraries: Record<string, object> = {}): Promise<Ran> {
  const db = join(tempDir('raiment-retry-'), 'w.db')
  // A weave id of its own: call ids (the keys the shared server counts by) start with it.
  const weave = await Weave.open({ db, weaveId: `retry-${++weaves}`, durability: 'memory', threads: { t: type }, libraries, ioLibs: false, dumps: false })
  try {
    const id = weave.spawn('t', params)
    const end = await weave.join(id)
    const log = AttemptLog.of(weave.journal)
    return { end, attempts: log.ofThread(id), entries: weave.journal.entries(id), db, id, row: weave.journal.thread(id)!, kept: log.keptCalls }
  } finally {
    await weave.close()
  }
}

const poster = thread({
  uses: ['fetch'],
  async does(p: { url: string; retry?: object | false; idempotent?: boolean; method?: string }) {
    const res = await this.fetch.request(p.url, {
      method: p.method ?? 'POST',
      body: { hello: 1 },
      idempotent: p.idempotent ?? true,
      ...(p.retry === undefined ? {} : { retry: p.retry as false }),
    })
    return { status: res.status, body: res.body }
  },
})

describe('fetch retries', () => {
  it("retries an error answer whose body is not JSON under as: 'json' (a proxy's 503 page), as any other", async () => {
    const t = thread({
      uses: ['fetch'],
      async does(p: { url: string }) {
        const res = await this.fetch.request(p.url, { method: 'POST', body: { hello: 1 }, idempotent: true, as: 'json', retry: FAST })
        return { status: res.status, body: res.body }
      },
    })
    // Its 503s say 'try again', as text: before, the first was RAIMENT_FETCH_BAD_JSON, not retried.
    const r = await run(t, { url: `${server.url}/effect?fail=2` })
    expect(r.end).toMatchObject({ status: 'done', result: { status: 200, body: { key: expect.any(String) as unknown } } })
    expect(r.attempts).toHaveLength(2)
  })

  it('retries a flaky POST with the same call id until it succeeds; only the success reaches the thread', async () => {
    const r = await run(poster, { url: `${server.url}/effect?fail=2`, retry: { ...FAST, attempts: 4 } })
    expect(r.end).toMatchObject({ status: 'done', result: { status: 200 } })
    const key = (r.end as { result: { body: { key: string } } }).result.body.key
    const entries = r.entries
    expect(entries).toHaveLength(1)
    // The key the server saw is the call id of the thread's one call, for all three attempts.
    expect(key).toBe(callIdOfRow(r.row, entries[0]![1], 0))
    expect(server.keys.get(key)).toMatchObject({ requests: 3, effects: 1 })
    expect(r.attempts.map((a) => [a.call, a.n, a.name])).toEqual([
      [key, 1, 'fetch.request'],
      [key, 2, 'fetch.request'],
    ])
    const policy = mergePolicy([{ ...FAST, attempts: 4 }])!
    r.attempts.forEach((a, i) => {
      const [lo, hi] = delayBounds(policy, i + 1)
      expect(a.due - a.ended).toBeGreaterThanOrEqual(lo)
      expect(a.due - a.ended).toBeLessThanOrEqual(hi)
      expect(decodeError(a.error)).toMatchObject({ name: 'FetchError', code: 'RAIMENT_FETCH_STATUS', status: 503 })
    })
    // Each attempt started once the wait before it was over.
    expect(r.attempts[1]!.started).toBeGreaterThanOrEqual(r.attempts[0]!.due)
    expect(entries[0]![5]).toBeGreaterThanOrEqual(r.attempts[1]!.due)
    // Its outcome recorded, the weave keeps nothing of the call in memory (its rows stay).
    expect(r.kept).toBe(0)
  })

  it('gives the thread the last answer once the attempts are spent, and each error stays in the journal', async () => {
    const r = await run(poster, { url: `${server.url}/effect?fail=9`, retry: { ...FAST, attempts: 3 } })
    expect(r.end).toMatchObject({ status: 'done', result: { status: 503, body: 'try again' } })
    expect(r.attempts.map((a) => a.n)).toEqual([1, 2])
    expect(r.kept).toBe(0)
  })

  it('retries a dropped connection (a network error) and fails with the last error when none is left', async () => {
    const r = await run(poster, { url: `${server.url}/effect?fail=9&mode=reset`, retry: { ...FAST, attempts: 2 } })
    expect(r.end.status).toBe('failed')
    expect((r.end as unknown as { error: { code: string } }).error.code).toBe('RAIMENT_FETCH_FAILED')
    expect(r.attempts).toHaveLength(1)
    expect(decodeError(r.attempts[0]!.error)).toMatchObject({ code: 'RAIMENT_FETCH_FAILED' })
  })

  it('does not retry by default a POST that carries no idempotency key; does retry a GET', async () => {
    const post = await run(poster, { url: `${server.url}/effect?fail=1`, idempotent: false, retry: { initialInterval: 10 } })
    expect(post.end).toMatchObject({ status: 'done', result: { status: 503 } })
    expect(post.attempts).toHaveLength(0)
    const get = thread({
      uses: ['fetch'],
      retry: { fetch: { initialInterval: 10, jitter: 0 } },
      async does(url: string) {
        return (await this.fetch.get(url, { headers: { 'Idempotency-Key': 'get-1' } })).status
      },
    })
    const r = await run(get, `${server.url}/effect?fail=2`)
    expect(r.end).toMatchObject({ status: 'done', result: 200 })
    expect(r.attempts.map((a) => a.call)).toEqual([r.attempts[0]!.call, r.attempts[0]!.call])
  })

  it('retry: false on the call turns the retries of its thread type and library off', async () => {
    const t = thread({
      uses: ['fetch'],
      retry: { fetch: { attempts: 5, initialInterval: 10 } },
      async does(url: string) {
        const a = await this.fetch.post(url, {}, { idempotent: true, retry: false })
        return a.status
      },
    })
    const r = await run(t, `${server.url}/effect?fail=1`)
    expect(r.end).toMatchObject({ status: 'done', result: 503 })
    expect(r.attempts).toHaveLength(0)
  })

  it('a per-call policy is not part of the call key: a replay of the record matches without retrying or waiting', async () => {
    const { dump, result } = await record(poster, { url: `${server.url}/effect?fail=1`, retry: { ...FAST, attempts: 3 } }, { name: 'poster', ioLibs: false })
    expect(result).toMatchObject({ status: 200 })
    expect(dump.entries.map((e) => e.args)).toEqual([[`${server.url}/effect?fail=1`, { method: 'POST', body: { hello: 1 }, idempotent: true }]])
    const before = new Map([...server.keys].map(([k, v]) => [k, v.requests]))
    // The same call with another policy (or none) replays from the same record.
    const again = await replay(poster, { ...dump, thread: { ...dump.thread, params: { url: `${server.url}/effect?fail=1`, retry: { attempts: 9 } } } }, { ioLibs: false })
    expect(pendingRetryWaits()).toBe(0)
    expect(again.result).toEqual(result)
    expect(new Map([...server.keys].map(([k, v]) => [k, v.requests]))).toEqual(before)
  })
})

describe('policies of libraries and thread types', () => {
  it('a library declares its retries; a thread type refines them per method; others are made once', async () => {
    let calls = 0
    const retryFlaky = {
      default: {
        async charge(n: number): Promise<number> {
          calls++
          if (calls % 3 !== 0) throw Object.assign(new Error('busy'), { code: 'EBUSY' })
          return n
        },
        async other(): Promise<number> {
          calls++
          throw Object.assign(new Error('busy'), { code: 'EBUSY' })
        },
      },
      retry: { policy: { attempts: 2, initialInterval: 5, retryOn: 'EBUSY' } },
    }
    const t = thread({
      uses: ['retryFlaky'],
      retry: { 'retryFlaky.charge': { attempts: 3, jitter: 0 } },
      async does() {
        const a = await this.retryFlaky.charge(7)
        const b = await this.retryFlaky.other().catch((e: Error & { code: string }) => e.code)
        return [a, b]
      },
    })
    const r = await run(t, undefined, { retryFlaky })
    expect(r.end).toMatchObject({ status: 'done', result: [7, 'EBUSY'] })
    // charge: 3 attempts under the thread type's policy; other: 2 under the library's.
    expect(calls).toBe(5)
    expect(r.attempts.map((a) => [a.name, a.n])).toEqual(expect.arrayContaining([['retryFlaky.charge', 1], ['retryFlaky.charge', 2], ['retryFlaky.other', 1]]))
    expect(r.attempts).toHaveLength(3)
  })

  it('a thread type policy without retryOn retries any error of a library that has no retries of its own, but not a bad argument', async () => {
    let n = 0
    const retryFlip = {
      async flip(): Promise<string> {
        if (++n < 3) throw new TypeError('not yet')
        return 'ok'
      },
      async bad(): Promise<string> {
        n++
        throw new InvalidArgument('no')
      },
    }
    const t = thread({
      uses: ['retryFlip'],
      retry: { retryFlip: { initialInterval: 1 } },
      async does() {
        return [await this.retryFlip.flip(), await this.retryFlip.bad().catch((e: Error) => e.message)]
      },
    })
    const r = await run(t, undefined, { retryFlip })
    expect(r.end).toMatchObject({ status: 'done', result: ['ok', 'no'] })
    expect(n).toBe(4)
  })

  it('a retryOn predicate that throws: the call is not retried and fails with the library error, which carries the throw as retryOnError; the weave warns', async () => {
    let calls = 0
    const retryPred = {
      async charge(): Promise<number> {
        calls++
        throw Object.assign(new Error('rate limited'), { code: 'rate_limit' })
      },
    }
    const t = thread({
      uses: ['retryPred'],
      retry: {
        retryPred: {
          attempts: 3,
          initialInterval: 1,
          retryOn: () => {
            throw new TypeError('boom in retryOn')
          },
        },
      },
      async does() {
        return this.retryPred.charge().catch((e: Error & { code: string; retryOnError: Error & { code: string; cause: Error } }) => {
          const r = e.retryOnError
          return { code: e.code, message: e.message, retryOnError: { name: r.name, code: r.code, message: r.message, cause: [r.cause.name, r.cause.message] } }
        })
      },
    })
    const warnings: Array<Error & { code?: string }> = []
    const db = join(tempDir('raiment-retry-'), 'w.db')
    const weave = await Weave.open({ db, durability: 'memory', threads: { t }, libraries: { retryPred }, ioLibs: false, dumps: false, onWarning: (w) => warnings.push(w) })
    try {
      const id = weave.spawn('t', undefined)
      const end = await weave.join(id)
      const seen = {
        code: 'rate_limit',
        message: 'rate limited',
        retryOnError: {
          name: 'RetryOnThrew',
          code: 'RAIMENT_RETRY_ON_THREW',
          message: 'the retryOn predicate of retryPred.charge threw on attempt 1 (boom in retryOn), so the call was not retried and ended with what that attempt gave; a predicate must return true or false for any error',
          cause: ['TypeError', 'boom in retryOn'],
        },
      }
      expect(end).toMatchObject({ status: 'done', result: seen })
      expect(calls).toBe(1)
      expect(warnings.map((w) => [w.code, w.message])).toEqual([[seen.retryOnError.code, seen.retryOnError.message]])
      // Recorded with the call's error: a replay sees the same.
      const again = await replay(t, readDump(dumpText(makeDump(weave.journal, id))), { ioLibs: false })
      expect(again).toMatchObject({ status: 'done', result: seen })
    } finally {
      await weave.close()
    }
  })

  it('checks policies where they are declared', async () => {
    expect(() => thread({ uses: ['clock'], retry: { fetch: {} } as never, async does() {} })).toThrow(/retry names 'fetch', but the thread type uses only clock/)
    expect(() => thread({ uses: ['clock'], retry: { clock: { attempts: 0 } }, async does() {} })).toThrow(/attempts must be a whole number from 1 up/)
    expect(() => thread({ uses: ['clock'], retry: { clock: { tries: 3 } as never }, async does() {} })).toThrow(/unknown retry policy field 'tries'/)
    const db = join(tempDir('raiment-retry-'), 'w.db')
    await expect(Weave.open({ db, durability: 'memory', threads: {}, ioLibs: false, libraries: { x: { default: { async a() {} }, retry: { policy: { jitter: 2 } } } } })).rejects.toThrow(InvalidLibraryModule)
    const r = await run(poster, { url: `${server.url}/effect`, retry: { backoffCoefficient: 0.5 } })
    expect(r.end.status).toBe('failed')
    expect((r.end as { error: Error }).error).toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT' })
    expect((r.end as { error: Error }).error.message).toMatch(/fetch.request: the 'retry' option: retry backoffCoefficient must be a number from 1 up, got 0.5/)
  })
})

describe('raiment show', () => {
  it("waits what a 503's Retry-After asks (seconds or an HTTP-date) instead of the back-off, at most maximumInterval", async () => {
    const slow = { attempts: 2, initialInterval: 10, backoffCoefficient: 1, maximumInterval: 5_000, jitter: 0 }
    const honoured = await run(poster, { url: `${server.url}/effect?fail=1&retryAfter=1`, retry: slow })
    expect(honoured.end).toMatchObject({ status: 'done', result: { status: 200 } })
    expect(honoured.attempts.map((a) => a.due - a.ended)).toEqual([1_000])
    const key = (honoured.end as { result: { body: { key: string } } }).result.body.key
    const at = server.keys.get(key)!.at
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1_000 - 5)
    // Longer than the policy's longest wait: that instead.
    const capped = await run(poster, { url: `${server.url}/effect?fail=1&retryAfter=120`, retry: { ...slow, maximumInterval: 300 } })
    expect(capped.attempts.map((a) => a.due - a.ended)).toEqual([300])
    // The header's two forms.
    const now = Date.parse('2026-12-04T12:00:00Z')
    expect(retryAfterMs('7', now)).toBe(7_000)
    expect(retryAfterMs('Fri, 04 Dec 2026 12:00:30 GMT', now)).toBe(30_000)
    expect(retryAfterMs('Fri, 04 Dec 2026 11:00:00 GMT', now)).toBe(0)
    expect(retryAfterMs('soon', now)).toBeUndefined()
    expect(retryAfterMs(undefined, now)).toBeUndefined()
  })

  it('lists each failed attempt of a call under it', async () => {
    const r = await run(poster, { url: `${server.url}/effect?fail=2`, retry: { ...FAST, attempts: 4 } })
    const text = await cliOut(['show', r.id, '--db', r.db])
    expect(text).toMatch(/seq 0 fetch.request {2}attempt 1 .*RAIMENT_FETCH_STATUS: HTTP 503/)
    expect(text).toMatch(/seq 0 fetch.request {2}attempt 2 .*RAIMENT_FETCH_STATUS: HTTP 503/)
    const json = await cliOut(['show', r.id, '--db', r.db, '--json'])
    const calls = (JSON.parse(json) as { calls: Array<{ attempts?: Array<{ n: number; error: { fields: { status: number } } }> }> }).calls
    expect(calls[0]!.attempts!.map((a) => [a.n, a.error.fields.status])).toEqual([
      [1, 503],
      [2, 503],
    ])
  })
})

describe('waits', () => {
  /** Resolves once a call of this process waits between two attempts. */
  function waiting(): Promise<void> {
    return new Promise((resolve) => {
      const poll = (): void => void (pendingRetryWaits() > 0 ? resolve() : setImmediate(poll))
      poll()
    })
  }

  it('a thread killed during a wait ends at once, and no attempt follows', async () => {
    const db = join(tempDir('raiment-retry-'), 'w.db')
    const weave = await Weave.open({ db, weaveId: `retry-${++weaves}`, durability: 'memory', threads: { t: poster }, ioLibs: false, dumps: false })
    try {
      const id = weave.spawn('t', { url: `${server.url}/effect?fail=9`, retry: { attempts: 5, initialInterval: 600_000 } })
      await waiting()
      expect(weave.kill(id)).toBe(true)
      expect((await weave.join(id)).status).toBe('killed')
      expect(pendingRetryWaits()).toBe(0)
      expect(AttemptLog.of(weave.journal).ofThread(id)).toHaveLength(1)
      // `show` does not say the call is in flight, nor when its next attempt is.
      const text = await cliOut(['show', id, '--db', db])
      expect(text).toMatch(/never answered \(the thread killed\) fetch.request {2}attempt 1 .*HTTP 503/)
      expect(text).not.toMatch(/in flight|next at/)
    } finally {
      await weave.close()
    }
  })

  it('a wait longer than a timer holds (24.8 days) is armed in pieces: no overflow warning, the attempt stays due at its time', async () => {
    const DAY = 86_400_000
    const retryLong = {
      async charge(): Promise<number> {
        throw Object.assign(new Error('down'), { code: 'rate_limit' })
      },
    }
    const t = thread({
      uses: ['retryLong'],
      retry: { retryLong: { attempts: 2, initialInterval: 30 * DAY, maximumInterval: 30 * DAY, jitter: 0 } },
      async does() {
        return this.retryLong.charge()
      },
    })
    const overflows: Error[] = []
    const onWarning = (w: Error): void => void (w.name === 'TimeoutOverflowWarning' && overflows.push(w))
    process.on('warning', onWarning)
    const weave = await Weave.open({ db: join(tempDir('raiment-retry-'), 'w.db'), durability: 'memory', threads: { t }, libraries: { retryLong }, ioLibs: false, dumps: false })
    try {
      const id = weave.spawn('t', undefined)
      await waiting()
      // A timer armed for more than 2^31 - 1 ms warns (on the next tick) and fires after 1 ms,
      // over and over: a turn of the event loop later the warnings would be there.
      await new Promise((resolve) => setImmediate(resolve))
      expect(overflows).toEqual([])
      const [row] = AttemptLog.of(weave.journal).ofThread(id)
      expect(row!.due - row!.ended).toBe(30 * DAY)
      expect(weave.journal.thread(id)!.status).toBe('running')
      expect(pendingRetryWaits()).toBe(1)
    } finally {
      await weave.close()
      process.off('warning', onWarning)
    }
    expect(pendingRetryWaits()).toBe(0)
  })

  it('a weave closed during a wait resumes it when it opens again: the attempts go on from where they were', async () => {
    const db = join(tempDir('raiment-retry-'), 'w.db')
    const weaveId = `retry-${++weaves}`
    const open = (): Promise<Weave> => Weave.open({ db, weaveId, durability: 'sync', threads: { t: poster }, ioLibs: false, dumps: false })
    const first = await open()
    const id = first.spawn('t', { url: `${server.url}/effect?fail=2`, retry: { attempts: 3, initialInterval: 150, jitter: 0 } })
    await waiting()
    const [row] = AttemptLog.of(first.journal).ofThread(id)
    await first.close()
    expect(pendingRetryWaits()).toBe(0)
    const again = await open()
    try {
      const end = await again.join(id)
      expect(end).toMatchObject({ status: 'done', result: { status: 200 } })
      const rows = AttemptLog.of(again.journal).ofThread(id)
      // Attempt 1 as recorded before the close (its due time kept), then attempt 2 after it.
      expect(rows.map((r) => r.n)).toEqual([1, 2])
      expect(rows[0]).toEqual(row)
      expect(rows[1]!.started).toBeGreaterThanOrEqual(row!.due)
      expect(server.keys.get(rows[0]!.call)).toMatchObject({ requests: 3, effects: 1 })
    } finally {
      await again.close()
    }
  })
})
