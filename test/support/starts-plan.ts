/** The thread type and library of the durable-starts test (test/spawn-commits.test.ts). */
import { thread } from 'raiment'

declare module 'raiment' {
  interface Libraries {
    steps: { step(i: number): Promise<number> }
  }
}

/** One recorded step: step(k) returns k, and so does the thread. */
export const oneStep = thread({
  uses: ['steps'],
  async does(params: { k: number }) {
    return this.steps.step(params.k)
  },
})

export const stepsLibrary = {
  async step(i: number): Promise<number> {
    return i
  },
}
