/**
 * What `raiment start --amqp URL` says of a URL the broker will not take (real CLI processes):
 * a virtual host it does not have is named, with what to do (before, it was "cannot reach the
 * broker … (Expected ConnectionOpenOk; got <ConnectionClose channel:0>); is RabbitMQ running
 * there?"), and the URL is quoted as the user typed it, password hidden, also under --replicate
 * (before, with the `?heartbeat=2` the lease adds).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { AMQP_URL, brokerTests, brokerUp, CI } from './support/broker.js'
import { tempDir } from './support/tmp.js'

const BIN = join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'raiment.js')

/** `raiment ARGS` in `cwd`: its exit code and the lines of its stderr. */
function raiment(args: string[], cwd: string): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, ['--conditions=raiment-source', BIN, ...args], { cwd, env: { ...process.env, RAIMENT_AMQP_URL: '' } })
  let err = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s))
  child.stdout.resume()
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, lines: err.trim().split('\n') })))
}

describe.skipIf(!brokerUp && !CI)('a broker URL the broker will not take', () => {
  brokerTests()
  const base = AMQP_URL.replace(/\/+$/, '')
  const shown = base.replace(/\/\/([^:@/]+):[^@]*@/, '//$1:***@')

  it('a virtual host it does not have is named, with what to do, and no journal is created', async () => {
    const dir = tempDir()
    for (const more of [[], ['--replicate']]) {
      const out = await raiment(['start', '--amqp', `${base}/nosuch`, '--db', 'a.db', ...more], dir)
      expect(out.code, out.lines.join('\n')).toBe(1)
      expect(out.lines).toHaveLength(1)
      expect(out.lines[0]).toMatch(/^raiment: RAIMENT_BROKER_VHOST_REFUSED: /)
      expect(out.lines[0]).toContain(`the broker at ${shown}/nosuch refused to open virtual host 'nosuch'`)
      expect(out.lines[0]).toContain('rabbitmqctl add_vhost nosuch')
      expect(out.lines[0]).not.toContain('guest:guest')
      expect(existsSync(join(dir, 'a.db'))).toBe(false)
    }
  })

  it('a URL that is not a broker\'s is quoted as typed under --replicate too, with nothing added', async () => {
    const dir = tempDir()
    for (const more of [[], ['--replicate']]) {
      const out = await raiment(['start', '--amqp', 'http://127.0.0.1:5672', '--db', 'a.db', ...more], dir)
      expect(out.code, out.lines.join('\n')).toBe(1)
      expect(out.lines).toHaveLength(1)
      expect(out.lines[0]).toMatch(/^raiment: RAIMENT_INVALID_BROKER_URL: --amqp "http:\/\/127\.0\.0\.1:5672" is not a broker URL/)
    }
    const typed = `${base}/nosuch?frame_max=131072`
    const out = await raiment(['start', '--amqp', typed, '--db', 'a.db', '--replicate'], dir)
    expect(out.lines[0]).toContain(`the broker at ${shown}/nosuch?frame_max=131072 refused`)
  })
})
