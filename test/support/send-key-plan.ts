/**
 * What the keyed-send tests share (test/send-keys*.test.ts and the child of the crash test):
 * a thread that collects the messages it is sent until `{ stop: true }`, and a weave opened on a
 * file with it.
 */
import { thread, Weave, type WeaveOptions } from 'raiment'

/** Returns every message it received before `{ stop: true }`, in the order received. */
export const collect = thread({
  uses: ['mailbox', 'registry'],
  async does(p: { name?: string } | undefined) {
    if (p?.name !== undefined) await this.registry.register(p.name)
    const got: unknown[] = []
    for (;;) {
      const m = await this.mailbox.receive<unknown>()
      if (typeof m === 'object' && m !== null && 'stop' in m) return got
      got.push(m)
    }
  },
})

/** A weave `w` on `db` that runs `collect` (fsync'd: the crash test kills its process). */
export function openCollecting(db: string, extra: Partial<WeaveOptions> = {}): Promise<Weave> {
  return Weave.open({ db, weaveId: 'w', threads: { collect }, ioLibs: false, dumps: false, durability: 'sync', ...extra })
}
