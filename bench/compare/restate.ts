// Restate: restate-server from its npm package (single node, loopback, no telemetry, fresh base
// dir) and the TypeScript SDK's endpoint (restate-service.ts) as two child processes, driven
// through the HTTP ingress as a client would. Both are stopped, and the base dir removed, at close.
import { type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EngineUnavailable, type Engine } from './engine.js'
import { restateServerBinary, versionOf } from './deps.js'
import { freePort, start, stop, waitForHttp } from './child.js'

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

async function call(url: string, init?: RequestInit): Promise<unknown> {
  const response = await fetch(url, init)
  const text = await response.text()
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url} answered ${response.status}: ${text}`)
  return text ? JSON.parse(text) : null
}
const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** The last lines of a log file, to explain why a server did not come up. */
function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** Starts restate-server; EngineUnavailable with its log's tail if it does not come up. */
async function startServer(baseDir: string): Promise<{ server: ChildProcess; admin: string; ingress: string }> {
  let binary: string
  try {
    binary = restateServerBinary()
  } catch (cause) {
    throw new EngineUnavailable(`no restate-server binary for ${process.platform}-${process.arch} in @restatedev/restate-server`, { cause })
  }
  const [fabric, adminPort, ingressPort] = [await freePort(), await freePort(), await freePort()]
  const logFile = join(baseDir, 'server.log')
  const log = openSync(logFile, 'w')
  const server = start(binary, ['--config-file', here('restate.toml'), '--base-dir', join(baseDir, 'data'), '--no-logo'], {
    stdio: ['ignore', log, log],
    env: { ...process.env, RESTATE_BIND_PORT: String(fabric), RESTATE_ADMIN__BIND_PORT: String(adminPort), RESTATE_INGRESS__BIND_PORT: String(ingressPort) },
  })
  closeSync(log)
  const admin = `http://127.0.0.1:${adminPort}`
  const ingress = `http://127.0.0.1:${ingressPort}`
  try {
    await waitForHttp(`${admin}/health`, server)
    await waitForHttp(`${ingress}/restate/health`, server)
  } catch (cause) {
    await stop(server)
    const why = cause instanceof Error ? cause.message : String(cause)
    throw new EngineUnavailable(`restate-server did not start: ${why}\n${tail(logFile)}`, { cause })
  }
  return { server, admin, ingress }
}

/** Starts the service endpoint and resolves with it and the port it listens on. */
async function startService(): Promise<{ service: ChildProcess; port: number }> {
  const service = start(process.execPath, [...process.execArgv, here('restate-service.ts')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // The SDK logs every invocation at INFO; DBOS runs at logLevel 'error' likewise.
    env: { ...process.env, RESTATE_LOGGING: 'WARN' },
  })
  const port = await new Promise<number>((resolve, reject) => {
    service.once('message', (m) => resolve((m as { port: number }).port))
    service.once('exit', (code) => reject(new Error(`the Restate service endpoint exited (${code}) before listening`)))
  })
  service.disconnect()
  return { service, port }
}

/** Opens Restate: server, endpoint, registration. */
export async function open(): Promise<Engine> {
  const baseDir = mkdtempSync(join(tmpdir(), 'raiment-bench-restate-'))
  const children: ChildProcess[] = []
  const close = async (): Promise<void> => {
    for (const child of children.reverse()) await stop(child)
    rmSync(baseDir, { recursive: true, force: true })
  }
  try {
    const { server, admin, ingress } = await startServer(baseDir)
    children.push(server)
    const { service, port } = await startService()
    children.push(service)
    await call(`${admin}/deployments`, post({ uri: `http://127.0.0.1:${port}`, force: true }))
    const { version } = (await call(`${admin}/version`)) as { version: string }

    return {
      label: `Restate ${version}, SDK ${versionOf('@restatedev/restate-sdk')}`,
      run: async (n) => (await call(`${ingress}/Steps/run`, post(n))) as number,
      async start(n) {
        // /send answers once the invocation is durably accepted by the server.
        const { invocationId } = (await call(`${ingress}/Steps/run/send`, post(n))) as { invocationId: string }
        return async () => (await call(`${ingress}/restate/invocation/${invocationId}/attach`)) as number
      },
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
