/**
 * Type tests of `replay()`'s result, checked by `tsc --noEmit` (the typecheck of `npm test`;
 * nothing here runs): `status` narrows it as `weave.join`'s end narrows, so a test reads the
 * result's fields once it knows the thread is done; unnarrowed, the fields read as before.
 */
import { expectTypeOf } from 'vitest'
import { thread } from 'raiment'
import { replay } from 'raiment/testing'

const greet = thread({
  uses: ['clock'],
  async does(p: { name: string }) {
    return { greeted: p.name, at: await this.clock.now() }
  },
})

export async function narrows(): Promise<string> {
  const r = await replay(greet, 'fixtures/greet.json')
  // Unnarrowed, each field reads as it did before the union.
  expectTypeOf(r.result).toEqualTypeOf<{ greeted: string; at: number } | undefined>()
  expectTypeOf(r.error).toEqualTypeOf<Error | undefined>()
  expectTypeOf(r.divergence?.detail).not.toBeNever()
  if (r.status === 'done') {
    expectTypeOf(r.result).toEqualTypeOf<{ greeted: string; at: number }>()
    return r.result.greeted
  }
  // @ts-expect-error the result may be absent until the status says done
  void r.result.greeted
  if (r.status === 'failed') expectTypeOf(r.error).toEqualTypeOf<Error>()
  if (r.status === 'continued') expectTypeOf(r.continued).toEqualTypeOf<unknown>()
  if (r.status === 'unfinished') expectTypeOf(r.next).toEqualTypeOf<string | undefined>()
  return r.calls.map((c) => c.call).join()
}
