/**
 * Two replicated weaves as real `raiment start` processes, `x` and `h`, each in a temp dir of its
 * own, on the service broker in a fresh namespace (taken over after 1 s of silence), joined; the
 * namespace removed and every process a test adds to `procs` killed at the end.
 */
import { join } from 'node:path'
import { AMQP_URL, freshNamespace } from './broker.js'
import { raimentProcess, THREADS, type Running } from './raiment-process.js'
import { removeReplNamespace } from './repl-cluster.js'
import { tempDir } from './tmp.js'

export interface ReplicatedPair {
  ns: string
  x: Running
  h: Running
  dirX: string
  dirH: string
  /** `raiment start` of x again, as first. */
  xArgs: string[]
  /** Every process to kill at the end (x and h; push more). */
  procs: Running[]
}

/** Starts x and h; resolves once both have joined the namespace. */
export async function replicatedPair(cleanups: Array<() => Promise<void>>): Promise<ReplicatedPair> {
  const ns = freshNamespace()
  cleanups.push(() => removeReplNamespace(AMQP_URL, ns, ['x', 'h']))
  const procs: Running[] = []
  cleanups.push(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    await Promise.all(procs.map((p) => p.ended))
  })
  const args = ['start', '--replicate', '--amqp', AMQP_URL, '--namespace', ns, '--heartbeat', '100', '--takeover-after', '1000', '--threads', THREADS]
  const [dirX, dirH] = [tempDir(), tempDir()]
  const xArgs = [...args, '--id', 'x', '--db', join(dirX, 'x.db')]
  const x = raimentProcess(dirX, xArgs)
  const h = raimentProcess(dirH, [...args, '--id', 'h', '--db', join(dirH, 'h.db')])
  procs.push(x, h)
  await Promise.all([x, h].map((p) => p.until((out) => out.includes(`joined namespace '${ns}'`))))
  return { ns, x, h, dirX, dirH, xArgs, procs }
}
