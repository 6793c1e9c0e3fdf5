/**
 * worker-pool: a dispatcher holds `jobs` jobs (numbered 1…jobs; job n's answer is n²) and hands
 * them to `workers` workers that ask it for work by message. The workers are the children of a
 * `raiment/supervisor` (one-for-one) that this thread spawns; every `failEvery`-th job makes the
 * worker that takes it crash the first time, and the supervisor starts a new worker in its place.
 *
 * No job is lost: the dispatcher monitors every worker that asks for work, and when one ends
 * holding a job, the job goes back to the head of the queue. None is done twice: a worker
 * answers before it asks again, and a job is handed out again only after its holder has ended
 * without answering. The result lists the job of every answer received, sorted: each job once.
 *
 * The dispatcher and the supervisor are linked: kill the pool and the supervisor stops its
 * workers; should the supervisor give up, the pool fails saying so.
 */
import { thread, type ExitMessage } from 'raiment'

interface Job {
  id: number
  attempt: number
}
type Msg = { want: string } | { answer: number; job: number; from: string } | ExitMessage

export default thread({
  uses: ['log', 'mailbox', 'threads'],
  async does(params: { jobs: number; workers: number; failEvery: number; jobMs?: number }) {
    const { jobs, workers, failEvery, jobMs = 50 } = params ?? {}
    for (const [k, v] of Object.entries({ jobs, workers, failEvery })) {
      if (!Number.isInteger(v) || v < 1) {
        throw new TypeError(`worker-pool expects params { jobs, workers, failEvery: whole numbers >= 1, jobMs?: ms }, got ${k} = ${JSON.stringify(v)}`)
      }
    }
    const self = await this.threads.self()
    await this.threads.trapExits(true)
    const supervisor = await this.threads.spawn('raiment/supervisor', {
      strategy: 'one-for-one',
      // Room for every planned crash, and a few more before the supervisor gives up.
      intensity: { restarts: Math.floor(jobs / failEvery) + 3, withinMs: 60_000 },
      children: Array.from({ length: workers }, () => ({
        type: 'worker-pool/worker',
        params: { dispatcher: self, failEvery, jobMs },
        // Restarted when it fails; a worker told to stop ends done and stays ended.
        restart: 'transient',
      })),
    })
    await this.threads.link(supervisor)

    const queue: Job[] = Array.from({ length: jobs }, (_, i) => ({ id: i + 1, attempt: 0 }))
    /** Worker id → the job it holds. */
    const holding = new Map<string, Job>()
    const watched = new Set<string>()
    /** Workers that asked for work when the queue was empty, in the order they asked. */
    const idle: string[] = []
    const answered: number[] = []
    const answers = new Map<number, number>()
    let crashes = 0
    const finished = (): boolean => queue.length === 0 && holding.size === 0

    const give = async (worker: string): Promise<void> => {
      const job = queue.shift()
      if (job !== undefined) {
        job.attempt++
        holding.set(worker, job)
        await this.mailbox.send(worker, { job: job.id, attempt: job.attempt })
      } else if (finished()) await this.mailbox.send(worker, { stop: true })
      else idle.push(worker)
    }

    for (;;) {
      const m = await this.mailbox.receive<Msg>()
      if (typeof m !== 'object') continue
      if ('want' in m) {
        if (!watched.has(m.want)) {
          watched.add(m.want)
          await this.threads.monitor(m.want)
        }
        await give(m.want)
      } else if ('answer' in m) {
        answered.push(m.job)
        answers.set(m.job, m.answer)
        if (holding.get(m.from)?.id === m.job) holding.delete(m.from)
        if (finished()) for (const w of idle.splice(0)) await this.mailbox.send(w, { stop: true })
      } else if (m.exit === supervisor) {
        if (m.status !== 'done') {
          throw new Error(`worker-pool: the supervisor ${m.status}${m.error ? ` (${m.error.message})` : ''} with ${queue.length + holding.size} of ${jobs} jobs not done`)
        }
        const restarted = (m.result as { restarted?: number } | undefined)?.restarted ?? 0
        const sum = [...answers.values()].reduce((a, b) => a + b, 0)
        return { jobs, done: answered.sort((a, b) => a - b), sum, crashes, restarts: restarted }
      } else {
        watched.delete(m.exit)
        const at = idle.indexOf(m.exit)
        if (at >= 0) idle.splice(at, 1)
        const job = holding.get(m.exit)
        if (job !== undefined) {
          holding.delete(m.exit)
          crashes++
          queue.unshift(job)
          await this.log.warn(`job ${job.id}: worker ${m.exit} ${m.status} holding it; the job goes back to the queue`, { error: m.error?.message })
          const waiting = idle.shift()
          if (waiting !== undefined) await give(waiting)
        }
      }
    }
  },
})
