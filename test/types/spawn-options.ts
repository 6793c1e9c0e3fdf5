/**
 * Type tests of `this.threads.spawn`'s options, checked by `tsc --noEmit` (the typecheck of
 * `npm test`; nothing here runs): `hold` and `succeeds` are the supervisor's own (internal, not
 * promised), so a thread that passes them gets a type error; `on` and `link` are a thread's.
 */
import { thread } from 'raiment'

export const parent = thread({
  uses: ['threads'],
  async does() {
    const a = await this.threads.spawn('child', {}, { link: true, on: 'local' })
    // @ts-expect-error `hold` is the supervisor's, not a thread's spawn option
    const b = await this.threads.spawn('child', {}, { link: true, hold: ['failed'] })
    // @ts-expect-error `succeeds` is the supervisor's, not a thread's spawn option
    const c = await this.threads.spawn('child', {}, { succeeds: a })
    return [a, b, c]
  },
})
