/**
 * Shared by the retry crash test and its weave child: the thread type that posts once to the
 * flaky service (test/support/flaky-server.ts) under a retry policy of its type, and that policy.
 */
import { thread } from 'raiment'

/** Waits of 150, 300, then 400 ms (the maximum), each lessened by up to half by jitter. */
export const POLICY = { attempts: 4, initialInterval: 150, backoffCoefficient: 2, maximumInterval: 400, jitter: 0.5 }

/** One thread per key: `fail` is how many of its first requests the service fails. */
export interface KeyPlan {
  fail: number
}

export const flaky = thread({
  uses: ['fetch'],
  retry: { fetch: POLICY },
  async does(p: { url: string; fail: number }) {
    const res = await this.fetch.post<{ key: string }>(`${p.url}/effect?fail=${p.fail}`, { fail: p.fail }, { idempotent: true })
    return { status: res.status, body: res.body }
  },
})
