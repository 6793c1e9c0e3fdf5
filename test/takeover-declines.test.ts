/**
 * Which weave declines a silent one (src/replication/takeover.ts), decided from what the weave
 * has heard: a weave that lacks one of the lost weave's thread types declines it at once, and
 * takes it over once it runs them (a reload); a hosted weave's heartbeats say its host's types,
 * which say nothing of its threads'; a weave heard again is tried as soon as it is silent again,
 * whatever made the last attempt wait. The view of the live weaves is given here as data (the
 * weaves' own heartbeats, as Membership.live() gives them, this one's with its state now); the
 * end-to-end cases, with real weave processes and a broker, are in takeover-candidates.test.ts.
 */
import { expect, it } from 'vitest'
import type { Beat, Membership } from '../src/amqp/membership.js'
import { Takeovers } from '../src/replication/takeover.js'
import { NoJournalStream } from '../src/replication/streams.js'

const AFTER = 1_000

function beat(id: string, more: Partial<Beat> = {}): Beat {
  return { id, host: 'h', pid: 1, threads: 0, names: {}, at: 0, intervalMs: 100, replication: { epoch: 1, generation: 1, lag: { entries: 0, bytes: 0 }, streamBytes: 0 }, leased: true, ...more }
}

/** Weave `c` running `types()`, its view holding itself alone, having heard `lost` before it went silent. */
function weaveC(types: () => string[], lost: Beat): { takeovers: Takeovers; tried: string[]; logged: string[] } {
  const tried: string[] = []
  const logged: string[] = []
  const takeovers = new Takeovers({
    takeoverAfterMs: AFTER,
    takeOver: (id) => {
      tried.push(id)
      return Promise.resolve(false)
    },
    hosted: () => new Set(),
    types,
    log: (l) => logged.push(l),
  })
  const view = { since: 0, ownEcho: Number.MAX_SAFE_INTEGER, live: () => [{ ...beat('c', { types: types(), ...takeovers.declines() }), seen: Date.now() }] }
  takeovers.start(view as unknown as Membership)
  takeovers.stop()
  takeovers.setSelf('c')
  takeovers.heard(lost)
  return { takeovers, tried, logged }
}

const later = (): number => Date.now() + 5 * AFTER

it('a weave that lacks a type of the silent one declines it at once, and takes it over once a reload gives it the type', () => {
  let types = ['storm']
  const { takeovers, tried, logged } = weaveC(() => types, beat('a', { types: ['storm', 'waiter'] }))
  takeovers.look(later())
  takeovers.look(later())
  expect(tried).toEqual([])
  expect(takeovers.declines()).toEqual({ declines: ['a'] })
  expect(logged.filter((l) => l.includes('(waiter)'))).toHaveLength(1)
  types = ['storm', 'waiter']
  expect(takeovers.declines()).toEqual({})
  takeovers.look(later())
  expect(tried).toEqual(['a'])
})

it("a hosted weave's types are its host's: they make no weave decline it (its journal decides)", () => {
  const { takeovers, tried } = weaveC(() => ['storm'], beat('a', { hostedBy: 'b', types: ['storm', 'billing'] }))
  takeovers.look(later())
  expect(tried).toEqual(['a'])
  expect(takeovers.declines()).toEqual({})
})

it('a weave whose stream was gone, heard again and then silent again, is taken over after its takeover time, not a minute later', async () => {
  const tried: string[] = []
  let gone = true
  const takeovers = new Takeovers({
    takeoverAfterMs: AFTER,
    takeOver: (id) => {
      tried.push(id)
      return gone ? Promise.reject(new NoJournalStream('ns', id, 'its head stream is missing')) : Promise.resolve(true)
    },
    hosted: () => new Set(),
    types: () => ['storm'],
    log: () => {},
  })
  const view = { since: 0, ownEcho: Number.MAX_SAFE_INTEGER, live: () => [{ ...beat('c', { types: ['storm'] }), seen: Date.now() }] }
  takeovers.start(view as unknown as Membership)
  takeovers.stop()
  takeovers.setSelf('c')
  takeovers.heard(beat('a', { types: ['storm'] }))
  takeovers.look(later())
  await expect.poll(() => takeovers.streamGone()).toEqual({ streamGone: ['a'] })
  // Started again on its own disk (its stream written anew), then lost again.
  takeovers.heard(beat('a', { types: ['storm'] }))
  expect(takeovers.streamGone()).toEqual({})
  gone = false
  takeovers.look(later())
  expect(tried).toEqual(['a', 'a'])
})
