/**
 * The broker password never shows: not in the errors of a connection that fails (refused port,
 * refused login), whole (cause and stack included), nor in what `raiment` prints of them.
 */
import { connect, createServer } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { inspect } from 'node:util'
import { describe, expect, test } from 'vitest'
import { BrokerConnection } from '../src/amqp/connection.js'
import { AMQP_URL, brokerUp } from './support/broker.js'
import { raimentProcess } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const PASSWORD = 'pw-' + 'Zq9'.repeat(6)

/** Whether a connection to the local `port` is refused (nothing listens there). */
async function refused(port: number): Promise<boolean> {
  const c = connect(port, '127.0.0.1')
  try {
    await once(c, 'connect')
    return false
  } catch (e) {
    return (e as { code?: string }).code === 'ECONNREFUSED'
  } finally {
    c.destroy()
  }
}

/**
 * A local port nothing listens on: port 1 (tcpmux: privileged, unused here), where a port taken
 * and let go could be taken meanwhile by another process of the suite (a RabbitMQ node's tools
 * listen on ports of the same range), or else such a port.
 */
async function closedPort(): Promise<number> {
  if (await refused(1)) return 1
  const s = createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as AddressInfo).port
  s.close()
  await once(s, 'close')
  return port
}

function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a failure')
    },
    (e: unknown) => e,
  )
}

describe('the broker password', () => {
  test('is not in the error of a refused connection, nor in what raiment prints (with RAIMENT_DEBUG stacks)', async () => {
    const url = `amqp://guest:${PASSWORD}@127.0.0.1:${await closedPort()}`
    const e = await errorOf(BrokerConnection.open(url, () => {}))
    expect((e as { code?: string }).code).toBe('RAIMENT_BROKER_UNREACHABLE')
    expect(inspect(e, { depth: 10 })).not.toContain(PASSWORD)
    const run = raimentProcess(tempDir(), ['weaves', '--amqp', url], { env: { RAIMENT_DEBUG: '1' } })
    const ended = await run.ended
    expect(ended.code).toBe(1)
    expect(ended.stderr).toContain('raiment: RAIMENT_BROKER_UNREACHABLE: cannot reach the broker at amqp://guest:***@127.0.0.1:')
    expect(ended.stdout + ended.stderr).not.toContain(PASSWORD)
  })

  test.skipIf(!brokerUp)('is not in the error of a refused login', async () => {
    const u = new URL(AMQP_URL)
    u.password = PASSWORD
    const e = await errorOf(BrokerConnection.open(u.toString(), () => {}))
    expect((e as { code?: string }).code).toBe('RAIMENT_BROKER_LOGIN_REFUSED')
    expect(inspect(e, { depth: 10 })).not.toContain(PASSWORD)
  })
})
