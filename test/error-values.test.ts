/**
 * An Error inside a value (params, a message, a call's outcome, a result) comes back as the
 * class it was (registered with registerError, or built in), with its `code`, own fields and
 * cause: live, after the weave is closed and the thread resumes from its journal, and through a
 * dump replayed. An Error written in superjson's own form (before) still reads as it did.
 */
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { makeDump, registerError, thread, Weave } from 'raiment'
import { dumpText, readDump, replay } from 'raiment/testing'
import { decodeValue, encodeValue } from '../src/encoding.js'
import { decodeError, encodeError } from '../src/error-records.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

declare module 'raiment' {
  interface Libraries {
    errApi: { get(): Promise<{ failure: Error }> }
    objApi: { charge(): Promise<number> }
  }
}

class PaymentError extends Error {
  override name = 'PaymentError'
  readonly code = 'E_PAYMENT'
  when?: Date
  constructor(
    message: string,
    readonly cents: number,
  ) {
    super(message)
  }
}
registerError(PaymentError)

function payment(message: string, cents: number): PaymentError {
  const e = new PaymentError(message, cents)
  e.when = new Date(1)
  return e
}

/**
 * What the test looks at in an error: class, name, message, own fields (and its cause's). A
 * `name` field comes back not enumerable (as a thrown error's does): it is compared as the name.
 */
function shape(e: unknown): unknown {
  if (!(e instanceof Error)) return e
  const fields = Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'name').map(([k, v]) => [k, shape(v)]))
  return { proto: Object.getPrototypeOf(e) as unknown, name: e.name, message: e.message, fields, cause: shape(e.cause) }
}

test('an Error in params, a message, an outcome and a result keeps its class and fields, live and resumed from the journal', async () => {
  const db = join(tempDir('raiment-error-values-'), 'w.db')
  const plain = Object.assign(new TypeError('t', { cause: payment('inner', 1) }), { code: 'E_T' })
  const t = thread({
    uses: ['errApi', 'mailbox'],
    async does(p: { pe: PaymentError; list: Error[] }) {
      const got = await this.errApi.get()
      const m1 = await this.mailbox.receive()
      const m2 = await this.mailbox.receive()
      return { p, got, m1, m2 }
    },
  })
  const open = (): Promise<Weave> =>
    Weave.open({ db, threads: { t }, libraries: { errApi: { get: async () => ({ failure: payment('declined', 250) }) } }, ioLibs: false })
  const want = {
    p: { pe: payment('in params', 5), list: [plain] },
    got: { failure: payment('declined', 250) },
    m1: { e: payment('in a message', 7) },
    m2: { e: plain },
  }
  const check = (v: unknown): void => {
    const r = v as typeof want
    expect(r.p.pe).toBeInstanceOf(PaymentError)
    expect(r.got.failure).toBeInstanceOf(PaymentError)
    expect(r.m2.e).toBeInstanceOf(TypeError)
    expect(shape(r.p.pe)).toEqual(shape(want.p.pe))
    expect(shape(r.p.list[0])).toEqual(shape(plain))
    expect(shape(r.got.failure)).toEqual(shape(want.got.failure))
    expect(shape(r.m1.e)).toEqual(shape(want.m1.e))
    expect(shape(r.m2.e)).toEqual(shape(plain))
  }

  let weave = await open()
  const id = weave.spawn('t', want.p)
  weave.send(id, want.m1)
  await until('the first message taken', () => weave.journal.entries(id).length >= 2)
  await weave.close()
  weave = await open()
  try {
    // Resumed: the outcome and the first message come from the journal.
    weave.send(id, want.m2)
    const end = await weave.join(id)
    expect(end.status).toBe('done')
    check((end as { result: unknown }).result)
    const dump = readDump(dumpText(makeDump(weave.journal, id)))
    check(dump.thread.result)
    const run = await replay(t, dump, { ioLibs: false })
    expect(run.status).toBe('done')
    check(run.result)
  } finally {
    await weave.close()
  }
})

test('a thrown plain object keeps its string code and message on the Error made of it, live and replayed; the object is kept as `thrown`', async () => {
  const limited = { code: 'rate_limit', message: 'too many requests', retryInMs: 20 }
  const t = thread({
    uses: ['objApi'],
    async does() {
      const seen = await this.objApi.charge().catch((e: Error & { code?: string; thrown?: unknown }) => ({ code: e.code, message: e.message, thrown: e.thrown }))
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- what the test is about
      throw { code: 'CARD_DECLINED', detail: 'insufficient funds', seen }
    },
  })
  const db = join(tempDir('raiment-error-values-'), 'w.db')
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what the test is about
  const weave = await Weave.open({ db, threads: { t }, libraries: { objApi: { charge: () => Promise.reject(limited) } }, ioLibs: false, dumps: false })
  try {
    const id = weave.spawn('t', undefined)
    const end = (await weave.join(id)) as { status: string; error: Error & { code?: string; thrown?: { seen?: unknown } } }
    expect(end.status).toBe('failed')
    expect(end.error.thrown!.seen).toEqual({ code: 'rate_limit', message: 'non-error thrown: too many requests', thrown: limited })
    expect([end.error.code, end.error.message]).toEqual(['CARD_DECLINED', 'non-error thrown: {"code":"CARD_DECLINED","detail":"insufficient funds","seen":{"code":"rate_limit","message":"non-error thrown: too many requests","thrown":{"code":"rate_limit","message":"too many requests","retryInMs":20}}}'])
    const run = await replay(t, readDump(dumpText(makeDump(weave.journal, id))), { ioLibs: false })
    expect(run.status).toBe('failed')
    expect(shape(run.error)).toEqual(shape(end.error))
  } finally {
    await weave.close()
  }
  // Not an object, or no string code: as before.
  expect(Object.keys(decodeError(encodeError('card declined')))).toEqual(['thrown'])
  expect(Object.keys(decodeError(encodeError({ code: 7 })))).toEqual(['thrown'])
})

test('an Error in a value comes back with its stack and cause; one among its own fields ends the record', () => {
  const e = payment('outer', 3)
  Object.assign(e, { self: e, fn: () => 2 })
  const back = (decodeValue(encodeValue({ e })) as { e: PaymentError & { self: Error; fn: unknown } }).e
  expect(back).toBeInstanceOf(PaymentError)
  expect(back.stack).toBe(e.stack)
  expect(back.cents).toBe(3)
  expect(back.fn).toBe('() => 2')
  // The error met again inside its own record: its name and message, as every Error in a value was before.
  expect(back.self).toBeInstanceOf(Error)
  expect([back.self.name, back.self.message]).toEqual(['PaymentError', 'outer'])
  // A thrown error's field holding an error holds it whole, too.
  const thrown = decodeError(encodeError(Object.assign(new Error('top'), { inner: payment('in', 4) }))) as Error & { inner: unknown }
  expect(shape(thrown.inner)).toEqual(shape(payment('in', 4)))
})

test('an Error recorded in the form written before (superjson: name and message) reads as it did', () => {
  const old = 'S{"json":{"e":{"name":"PaymentError","message":"in params"}},"meta":{"values":{"e":["Error"]},"v":1}}'
  const back = (decodeValue(old) as { e: Error }).e
  expect(Object.getPrototypeOf(back)).toBe(Error.prototype)
  expect([back.name, back.message, Object.keys(back)]).toEqual(['PaymentError', 'in params', ['name']])
})
