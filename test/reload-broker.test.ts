/**
 * Live reload where weaves talk through a broker (real processes, the real broker): a replicated
 * weave (`start --replicate --watch`) loads a changed thread file when it is written, and moves
 * its running thread to the new code; `start --weaves 2` passes a SIGHUP on to each of its
 * weaves, and each reloads.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { removeReplNamespace } from './support/repl-cluster.js'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** A thread that logs, waits for a message, and returns the version of its code with it. */
const waiter = (version: number): string => `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['log', 'mailbox'],
  async does() {
    await this.log.info('waiting')
    const m = await this.mailbox.receive()
    return { version: ${version}, m }
  },
})
`

function project(): { dir: string; put: (text: string) => void } {
  const dir = tempDir('raiment-reload-broker-')
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  mkdirSync(join(dir, 'threads'))
  const put = (text: string): void => writeFileSync(join(dir, 'threads', 'waits.ts'), text)
  put(waiter(1))
  return { dir, put }
}

describe.skipIf(!brokerUp && !CI)('live reload with a broker', () => {
  it('start --replicate --watch: a changed file is loaded as it is written, and the running thread moves to it', async () => {
    const { dir, put } = project()
    const ns = freshNamespace()
    const env = { RAIMENT_AMQP_URL: AMQP_URL }
    const weave = raimentProcess(dir, ['start', '--db', 'app.db', '--id', 'r', '--namespace', ns, '--replicate', '--watch'], { env })
    try {
      await weave.until((out) => out.includes('replicated; takes over'))
      const id = (await raiment(dir, 'spawn', 'waits', '--db', 'app.db')).stdout.trim()
      await weave.until((out) => out.includes(`${id} waiting`))
      put(waiter(2))
      await weave.until((out) => out.includes('reloaded waits (threads/waits.ts): 1 running thread moved to the new code, 0 kept on the old'))
      const sent = await raiment(dir, 'send', id, '"go"', '--db', 'app.db')
      expect(sent.code, sent.stderr).toBe(0)
      await weave.until((out) => out.includes(`done ${id} waits`))
      expect(weave.stdout).toContain(`done ${id} waits → {"version":2,"m":"go"}`)
    } finally {
      weave.child.kill('SIGTERM')
      await weave.ended
      await removeReplNamespace(AMQP_URL, ns, ['r'])
    }
  })

  it('start --weaves 2: a SIGHUP to it reaches each weave, and each reloads', async () => {
    const { dir, put } = project()
    const ns = freshNamespace()
    const env = { RAIMENT_AMQP_URL: AMQP_URL }
    const many = raimentProcess(dir, ['start', '--db', 'app.db', '--id', 'm', '--namespace', ns, '--weaves', '2'], { env })
    try {
      await many.until((out) => out.includes('[1] joined namespace') && out.includes('[2] joined namespace'))
      put(waiter(2))
      many.child.kill('SIGHUP')
      await many.until((out) => out.includes('[1] reloaded waits') && out.includes('[2] reloaded waits'))
      expect(many.stdout).toContain('[1] reloaded waits (threads/waits.ts): 0 running threads moved to the new code, 0 kept on the old')
    } finally {
      many.child.kill('SIGTERM')
      await many.ended
      await removeNamespace(ns, ['m-1', 'm-2'])
    }
  })
})
