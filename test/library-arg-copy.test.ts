/**
 * A library gets its own copy of a call's arguments (a user trial: a library that set a field of
 * its argument in place was seen doing so by the live thread, and not on replay, where no library
 * runs: the replay of its record ended otherwise). The thread never sees such a change, live or
 * on replay, and the library sees the arguments as they were at the call, in their key order.
 */
import { describe, expect, it } from 'vitest'
import { thread, type LibraryApi } from 'raiment'
import { record, replay } from 'raiment/testing'

const seen: unknown[] = []
const mut = {
  async tag(o: { tagged?: boolean }): Promise<number> {
    o.tagged = true
    return 1
  },
  async keys(o: Record<string, unknown>, d: Date, m: Map<string, number>): Promise<string> {
    seen.push(o, d, m)
    return Object.keys(o).join(',')
  },
}

declare module 'raiment' {
  interface Libraries {
    mut: LibraryApi<typeof mut>
    argPusher: LibraryApi<typeof argPusher.default>
  }
}

const mutate = thread({
  uses: ['mut'],
  async does(p: { o: { tagged?: boolean } }) {
    const o: { tagged?: boolean } = {}
    await this.mut.tag(o)
    await this.mut.tag(p.o)
    const arg = { z: 1, a: 2 }
    const d = new Date(0)
    const m = new Map([['k', 1]])
    const order = this.mut.keys(arg, d, m)
    // Changed after the call, before the library answers: the library saw the call's values.
    arg.z = 99
    return { argMutatedSeen: o.tagged === true, paramMutatedSeen: p.o.tagged === true, order: await order }
  },
})

/** Fails its first attempt after changing its argument: the second must see the argument as called. */
let attempts = 0
const argPusher = {
  default: {
    async push(o: { list: number[] }): Promise<number[]> {
      o.list.push(++attempts)
      if (attempts === 1) throw Object.assign(new Error('try again'), { code: 'AGAIN' })
      return o.list
    },
  },
  retry: { policy: { attempts: 3, initialInterval: 1, jitter: 0, retryOn: ['AGAIN'] } },
}

describe('a library that changes its arguments in place', () => {
  it('gets a fresh copy at each attempt of a retried call', async () => {
    const push = thread({
      uses: ['argPusher'],
      async does() {
        const o = { list: [0] }
        const got = await this.argPusher.push(o)
        return { got, thread: o.list }
      },
    })
    const { result } = await record(push, undefined, { name: 'push', libraries: { argPusher }, ioLibs: false })
    expect(result).toEqual({ got: [0, 2], thread: [0] })
  })

  it('changes its own copy: live and replay agree, and the thread never sees the change', async () => {
    const libraries = { mut }
    const { dump, result } = await record(mutate, { o: {} }, { name: 'mutate', libraries, ioLibs: false })
    expect(result).toEqual({ argMutatedSeen: false, paramMutatedSeen: false, order: 'z,a' })
    expect(seen[0]).toEqual({ z: 1, a: 2 })
    expect(seen[1]).toBeInstanceOf(Date)
    expect(seen[2]).toBeInstanceOf(Map)
    const run = await replay(mutate, dump, { libraries })
    expect(run.status).toBe('done')
    expect(run.result).toEqual(result)
  })
})
