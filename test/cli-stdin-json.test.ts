/**
 * `-` in place of a JSON argument reads it from stdin, for params and messages too large for a
 * command line (a user trial hit "Argument list too long"): `raiment spawn TYPE -` and
 * `raiment send TO -`, as a user pipes them, in real processes on a real journal.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bash, RAIMENT_SH, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

describe('JSON arguments from stdin', () => {
  it('spawn TYPE - takes the params, and send TO - the message, from stdin, whatever their size', async () => {
    const dir = tempDir()
    const db = join(dir, 'in.db')
    // Params and a message larger than one command-line argument may be (128 KiB on Linux).
    const pad = 'x'.repeat(300_000)
    writeFileSync(join(dir, 'tally.json'), JSON.stringify({ name: 'big', pad }))
    const spawn = `${RAIMENT_SH} spawn tally - --key t --db ${db} --threads ${THREADS}`
    const spawned = await bash(dir, `${spawn} --json < tally.json`)
    expect(spawned.code, spawned.stderr).toBe(0)
    const id = (JSON.parse(spawned.stdout) as { id: string }).id
    writeFileSync(join(dir, 'add.json'), JSON.stringify({ add: 2, pad }))
    for (let i = 0; i < 2; i++) {
      const sent = await bash(dir, `${RAIMENT_SH} send ${id} - --db ${db} < add.json`)
      expect(sent.code, sent.stderr).toBe(0)
      expect(JSON.parse(sent.stdout)).toMatchObject({ delivered: true, to: id })
    }
    const stop = await bash(dir, `printf '{"stop":true}' | ${RAIMENT_SH} send ${id} - --db ${db}`)
    expect(stop.code, stop.stderr).toBe(0)
    // The same spawn again, with --wait: a weave runs the thread here, which takes the messages.
    const ended = await bash(dir, `${spawn} --wait < tally.json`)
    expect(ended.code, ended.stderr).toBe(0)
    expect(ended.stdout.trim()).toBe('4')
    const shown = await bash(dir, `${RAIMENT_SH} show ${id} --db ${db} --json`)
    const t = JSON.parse(shown.stdout) as { thread: { params: { pad: string } } }
    expect(t.thread.params.pad).toBe(pad)
  })

  it('says what was wrong when stdin is not JSON, and records nothing', async () => {
    const dir = tempDir()
    const db = join(dir, 'bad.db')
    const bad = await bash(dir, `printf '{not json' | ${RAIMENT_SH} spawn tally - --db ${db} --threads ${THREADS}`)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^raiment: RAIMENT_INVALID_ARGUMENT: PARAMS_JSON is not valid JSON .*"\{not json"/m)
    const ps = await bash(dir, `${RAIMENT_SH} ps --db ${db} --json`)
    expect(ps.stdout.trim() === '' || ps.stdout.trim() === '[]').toBe(true)
  })
})
