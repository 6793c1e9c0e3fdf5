// A thread run twice: once never restarted, once closed as it waits in its receive and resumed by
// a weave opened again; the tests compare the two (results, records).
import { join } from 'node:path'
import type { ThreadEnd, Weave } from 'raiment'
import { tempDir } from './tmp.js'

/**
 * A library for such threads: `v(k, later)` answers `k` after `later` microtasks (a call made
 * first may complete after one made next); `ready()` tells `whenReady`'s promise that the thread
 * reached its receive.
 */
export function readyLibrary(): { lib: { v(k: number, later: number): Promise<number>; ready(): Promise<void> }; whenReady: () => Promise<void> } {
  let reached: () => void = () => {}
  return {
    lib: {
      async v(k: number, later: number) {
        for (let i = 0; i < later; i++) await Promise.resolve()
        return k
      },
      async ready() {
        reached()
      },
    },
    whenReady: () => new Promise((resolve) => (reached = resolve)),
  }
}

export interface Ran {
  end: ThreadEnd
  /** Its journal entries: [key, ordinal, ok, outcome]. */
  record: unknown[]
}

function recordOf(weave: Weave, id: string): unknown[] {
  return weave.journal.entries(id).map(([, key, ord, ok, outcome]) => [key, ord, ok, outcome])
}

/**
 * Runs thread `type` with `params` to its end, sending it `message` once it calls its library's
 * ready hook (`ready()` resolves then), in a weave that runs it through, and in one closed at that
 * point and opened again (after `between`, given the journal file) to resume it.
 */
export async function onceAndResumed(o: {
  open: (db: string) => Promise<Weave>
  type: string
  params: unknown
  message: unknown
  ready: () => Promise<void>
  between?: (db: string) => Promise<void>
}): Promise<{ once: Ran; resumed: Ran; db: string; id: string; resumedCount: number }> {
  const dir = tempDir()
  const run = async (weave: Weave, id: string): Promise<Ran> => {
    weave.send(id, o.message)
    const end = await weave.join(id)
    return { end, record: recordOf(weave, id) }
  }
  const once = await o.open(join(dir, 'once.db'))
  let ran: Ran
  try {
    const ready = o.ready()
    const id = once.spawn(o.type, o.params)
    await ready
    ran = await run(once, id)
  } finally {
    await once.close()
  }
  const db = join(dir, 'restarted.db')
  const first = await o.open(db)
  let id: string
  try {
    const ready = o.ready()
    id = first.spawn(o.type, o.params)
    await ready
    // The ready call recorded: the resume replays all of it.
    await first.committed()
  } finally {
    await first.close()
  }
  await o.between?.(db)
  const second = await o.open(db)
  try {
    return { once: ran, resumed: await run(second, id), db, id, resumedCount: second.resumed }
  } finally {
    await second.close()
  }
}
