/**
 * A message sent by a name no weave is known to hold yet waits in `outbox_names`; a thread here
 * registering the name takes it into its inbox, once. Under 'replicated' the batch that made it
 * wait can be committed and not yet released (the stream has not confirmed it): the message is
 * then both in the table and still queued in memory, and was put into the inbox twice (received
 * twice by the thread). And the names a weave announces to others are those committed and
 * released: before, a name was announced from the moment a thread registered it, and a crash
 * before its commit left other weaves sending to this one what should have waited for the name.
 * A real journal file; the tap holds batches as the replicator does.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Journal } from '../src/journal.js'
import { Messages } from '../src/messages.js'
import type { Remote } from '../src/remote.js'
import { HoldingTap } from './support/holding-tap.js'
import { tempDir } from './support/tmp.js'

it('a message waiting for a name, its batch committed and held, reaches the thread registering the name once', async () => {
  const journal = new Journal(join(tempDir('raiment-names-held-'), 'w.db'), { weaveId: 'a', durability: 'memory' })
  try {
    const tap = new HoldingTap()
    journal.setTap(tap)
    const messages = new Messages(journal, () => true)
    // A transport that cannot yet say which weave holds a name (just connected, or the broker down).
    messages.remote = { wake() {}, resolveName: () => 'unknown', namesChanged() {}, place: () => Promise.resolve('a') } as unknown as Remote
    messages.send('a/1', 'N', { hi: 1 }, 'msg-1')
    journal.flushNow()
    expect(tap.held).toHaveLength(1)
    // a/2 waits in a receive, and registers the name before that batch is released.
    const first = messages.take('a/2', undefined, Date.now() + 1_000, null)
    messages.register('N', 'a/2')
    journal.flushNow()
    tap.letGo(tap.held.length)
    expect(await first).toMatchObject({ from: 'a/1', message: { hi: 1 } })
    const second = messages.take('a/2', undefined, Date.now() + 50, null)
    journal.flushNow()
    tap.letGo(tap.held.length)
    expect(await second).not.toHaveProperty('message')
  } finally {
    journal.close()
  }
})

it('a name is announced once its registration is committed and released, and no longer once its removal is', () => {
  const journal = new Journal(join(tempDir('raiment-names-held-'), 'w.db'), { weaveId: 'a', durability: 'memory' })
  try {
    const tap = new HoldingTap()
    journal.setTap(tap)
    const messages = new Messages(journal, () => true)
    messages.register('N', 'a/1')
    journal.flushNow()
    expect(messages.names()).toEqual({})
    tap.letGo(1)
    expect(messages.names()).toEqual({ N: 'a/1' })
    expect(messages.unregister('N', 'a/1')).toBe(true)
    messages.register('M', 'a/1')
    journal.flushNow()
    expect(messages.names()).toEqual({ N: 'a/1' })
    tap.letGo(1)
    expect(messages.names()).toEqual({ M: 'a/1' })
  } finally {
    journal.close()
  }
})
