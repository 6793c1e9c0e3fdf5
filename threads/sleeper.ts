/**
 * sleeper: sleeps durably in steps, logging its progress. Each `clock.sleep` records its
 * deadline, so a weave that crashes half-way waits only what is left when it resumes.
 */
import { thread } from 'raiment'

export default thread({
  uses: ['clock', 'log'],
  async does(params: { steps: number; ms: number }) {
    const { steps, ms } = params ?? {}
    if (!Number.isInteger(steps) || steps < 1 || typeof ms !== 'number' || !(ms >= 0)) {
      throw new TypeError(`sleeper expects params { steps: whole number >= 1, ms: number >= 0 }, got ${JSON.stringify(params)}`)
    }
    for (let i = 1; i <= steps; i++) {
      await this.clock.sleep(ms)
      await this.log.info(`slept ${i}/${steps}`)
    }
    return { steps, slept: steps * ms }
  },
})
