/**
 * A weave in a process where `@opentelemetry/api` cannot be found (as in a project that did not
 * install it): its import fails, made to by a resolve hook registered first. Prints whether the
 * import fails, then the end of a thread that logs, spawns and sends.
 */
import { register } from 'node:module'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { mkdtempSync, rmSync } from 'node:fs'

const hooks = `export async function resolve(spec, ctx, next) {
  if (spec === '@opentelemetry/api') { const e = new Error("Cannot find package '@opentelemetry/api'"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e }
  return next(spec, ctx)
}`
register(`data:text/javascript,${encodeURIComponent(hooks)}`)

const missing = await import('@opentelemetry/api').then(
  () => false,
  () => true,
)
console.log(`api missing: ${missing}`)
const { Weave, thread } = await import('raiment')
const dir = mkdtempSync(join(tmpdir(), 'raiment-no-otel-'))
try {
  const child = thread({ uses: ['mailbox'], async does() { return this.mailbox.receive() } })
  const parent = thread({
    uses: ['threads', 'mailbox', 'clock'],
    async does() {
      const id = await this.threads.spawn('child')
      await this.mailbox.send(id, await this.clock.now().then(() => 'hi'))
      return this.threads.join(id)
    },
  })
  const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { child, parent } as never, ioLibs: false, dumps: false, telemetry: true })
  const end = await weave.join(weave.spawn('parent'))
  await weave.close()
  console.log(`end: ${JSON.stringify(end)}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
