/**
 * patch: deliberate changes of a thread's code under threads that are running (docs/changing-code.md).
 *
 * `patched(id)` is a marker call. Live, it is recorded and answers true: take the new path. On
 * the replay of a record made before the change, where the record lacks the marker while the
 * thread still has recorded calls to make (or past the end of the record of a thread that ended),
 * it answers false, unrecorded: take the old path, as the code that made the record did. `raiment check` reports, per change id, whether any thread
 * still needs the old path, so the old branch can be deleted once none does.
 */
import { InvalidArgument } from 'raiment'
import type { LibraryApi } from 'raiment'

const patch = {
  /**
   * True: this thread takes the new path of change `id` (recorded, so every replay of it agrees).
   * @throws InvalidArgument unless `id` is a non-empty string
   * @example
   * if (await this.patch.patched('charge-in-two-steps')) {
   *   await this.payments.authorize(order)
   *   await this.payments.capture(order)
   * } else {
   *   await this.payments.charge(order)
   * }
   */
  async patched(id: string): Promise<boolean> {
    if (typeof id !== 'string' || id === '') throw new InvalidArgument(`patch.patched(id) expects a change id (a non-empty string), got ${JSON.stringify(id)}`)
    return true
  },
}
export default patch

/** A record made before the change lacks the marker: its replay answers false (the old path). */
export const markers = { patched: false }

export type PatchApi = LibraryApi<typeof patch>
