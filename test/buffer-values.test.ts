/**
 * A Buffer is recorded and comes back as a Buffer with the same bytes: as params, as a call's
 * argument (fs.writeFile's data, a library's), as an outcome and as a result; live, after the
 * weave is closed and the thread resumes from its journal, and through a dump replayed. A value
 * recorded with `registerClass(Buffer)` (as an error once told users to do) reads as before.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { makeDump, registerClass, thread, Weave } from 'raiment'
import { dumpText, readDump, replay } from 'raiment/testing'
import { decodeArgs, decodeValue, encodeArgs, encodeValue } from '../src/encoding.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

declare module 'raiment' {
  interface Libraries {
    bufApi: { echo(b: Buffer): Promise<{ b: Buffer; n: number }> }
  }
}

function isSame(v: unknown, want: Buffer): void {
  expect(Buffer.isBuffer(v)).toBe(true)
  expect((v as Buffer).toString('hex')).toBe(want.toString('hex'))
}

test('a Buffer in params, arguments, an outcome and a result comes back a Buffer, live and resumed from the journal', async () => {
  const dir = tempDir('raiment-buffer-values-')
  const db = join(dir, 'w.db')
  const file = join(dir, 'out.bin')
  // A slice of a pooled Buffer: its bytes, not its pool's, are recorded.
  const bytes = Buffer.from('hello, bytes \u00ff')
  const t = thread({
    uses: ['fs', 'bufApi', 'mailbox'],
    async does(p: { b: Buffer; file: string }) {
      await this.fs.writeFile(p.file, p.b)
      const got = await this.bufApi.echo(Buffer.concat([p.b, Buffer.from([0])]))
      await this.mailbox.receive()
      return { p: p.b, got: got.b, n: got.n }
    },
  })
  const open = (): Promise<Weave> =>
    Weave.open({ db, threads: { t }, libraries: { bufApi: { echo: async (b: Buffer) => ({ b: Buffer.from(b), n: b.length }) } }, dumps: false })
  const check = (v: unknown): void => {
    const r = v as { p: Buffer; got: Buffer; n: number }
    isSame(r.p, bytes)
    isSame(r.got, Buffer.concat([bytes, Buffer.from([0])]))
    expect(r.n).toBe(bytes.length + 1)
  }

  let weave = await open()
  const id = weave.spawn('t', { b: bytes, file })
  await until('the calls recorded', () => weave.journal.entries(id).length >= 2)
  await weave.close()
  expect(readFileSync(file).equals(bytes)).toBe(true)
  weave = await open()
  try {
    weave.send(id, 'go')
    const end = await weave.join(id)
    expect(end.status).toBe('done')
    check((end as { result: unknown }).result)
    const dump = readDump(dumpText(makeDump(weave.journal, id)))
    isSame(dump.entries[0]!.args[1], bytes)
    check(dump.thread.result)
    const run = await replay(t, dump, { ioLibs: false, libraries: { bufApi: { echo: () => Promise.reject(new Error('not called on replay')) } } })
    expect(run.status).toBe('done')
    check(run.result)
  } finally {
    await weave.close()
  }
})

test('a Buffer as a value and as arguments: the same bytes, and the same key for the same bytes', () => {
  const b = Buffer.from([0, 1, 2, 255])
  isSame(decodeValue(encodeValue(b)), b)
  isSame((decodeValue(encodeValue({ m: new Map([['k', b]]) })) as { m: Map<string, Buffer> }).m.get('k'), b)
  const text = encodeArgs(['/x', b])
  isSame(decodeArgs(text)[1], b)
  expect(encodeArgs(['/x', Buffer.from([0, 1, 2, 255])])).toBe(text)
})

test('a value recorded as a registered class Buffer reads as it did; a Buffer registered so is still recorded as a Buffer', () => {
  registerClass(Buffer)
  // What `registerClass(Buffer)` had a Buffer of 'hi' recorded as: a class whose own fields are its bytes.
  const old = 'S{"json":{"0":104,"1":105},"meta":{"values":[["class","Buffer"]],"v":1}}'
  const back = decodeValue(old) as Record<string, unknown>
  expect(Object.getPrototypeOf(back)).toBe(Buffer.prototype)
  expect({ ...back }).toEqual({ 0: 104, 1: 105 })
  isSame(decodeValue(encodeValue(Buffer.from('hi'))), Buffer.from('hi'))
})
