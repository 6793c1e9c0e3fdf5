/**
 * worker-pool/worker: asks the dispatcher for a job, does it (job n's answer is n², after
 * `jobMs` ms), answers, and asks again, until it is told to stop; returns how many jobs it did.
 *
 * It crashes on purpose when it takes every `failEvery`-th job for the first time, while it holds
 * the job and before answering: its supervisor starts a new worker, and the dispatcher, which
 * monitors it, hands the job out again.
 */
import { registerError, thread } from 'raiment'

/** A worker crashed on purpose. Registered, so a replay rebuilds it as this class. */
export class WorkerCrashed extends Error {
  readonly code = 'WORKER_CRASHED'
  readonly job: number
  constructor(job: number, failEvery: number) {
    super(`crashed on job ${job} (on purpose: a job whose number is a multiple of ${failEvery} crashes its worker the first time)`)
    this.name = 'WorkerCrashed'
    this.job = job
  }
}
registerError(WorkerCrashed)

export default thread({
  uses: ['clock', 'mailbox', 'threads'],
  async does(params: { dispatcher: string; failEvery: number; jobMs?: number }) {
    const { dispatcher, failEvery, jobMs = 50 } = params ?? {}
    const self = await this.threads.self()
    let done = 0
    for (;;) {
      const asked = await this.mailbox.send(dispatcher, { want: self })
      if (!asked.delivered) return { done, stopped: asked.reason }
      const m = await this.mailbox.receive<{ job: number; attempt: number } | { stop: true }>()
      if ('stop' in m) return { done }
      if (m.job % failEvery === 0 && m.attempt === 1) throw new WorkerCrashed(m.job, failEvery)
      await this.clock.sleep(jobMs)
      await this.mailbox.send(dispatcher, { answer: m.job * m.job, job: m.job, from: self })
      done++
    }
  },
})
