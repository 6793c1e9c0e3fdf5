/**
 * The message command `send`: a message from outside to a thread (dead letters: src/cli/dead-letters.ts).
 *
 * Invariant: a message `raiment send` puts in an inbox itself is never lost or overwritten by a
 * weave. It does so only inside a write transaction that finds the journal's owner lock free; a
 * weave takes the lock, then waits for that transaction before it reads the journal, so it counts
 * the row this command wrote. When a weave does own the journal, the message goes to it as a
 * control request, and the weave delivers it exactly as `Weave.send` would.
 */
import { randomUUID } from 'node:crypto'
import { encodeValue } from '../encoding.js'
import { checkMessageSize, MAX_MESSAGE_BYTES } from '../message-size.js'
import { InvalidArgument, RaimentError } from '../errors.js'
import type { Journal } from '../journal.js'
import type { Envelope, SendResult } from '../messages.js'
import { answerOf, askTimeout, busyHint, waitText, type AskOptions } from './ask-weave.js'
import { complain, jsonArgument, movedTo, note, openExisting, runningOwner, say, withOwner, type DbOptions, type Owner } from './common.js'
import { weaveOfThread } from '../remote.js'
import { deadLetterInsert } from '../dead-letters.js'
import { checkSendKey, keyedId, keyOf, SEND_KEY_RETENTION_MS } from '../send-keys.js'

/** How long `send` waits for a running weave to answer. */
const SEND_TIMEOUT_MS = 5_000

/** Parses the MESSAGE_JSON argument of send, with an example in the error. */
export function parseMessage(text: string, to: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (e) {
    const quoted = /^[\w./:-]+$/.test(to) ? to : `'${to}'`
    throw new InvalidArgument(
      `MESSAGE_JSON is not valid JSON (${(e as Error).message}): ${JSON.stringify(text)}; nothing was sent. ` +
        `Quote it for the shell, e.g. raiment send ${quoted} '{"hello":"world"}' (a string is '"hi"')`,
    )
  }
}

type Sent = ReturnType<typeof deliver> | { owner: Owner; n: number }

/** What a send did: the weave's (or this process's) result, and a note when the message waits. */
export interface SendOutcome {
  result: SendResult
  /** With no weave running: where the message waits until one does. */
  waits?: string
  /**
   * The weave a `delivered: true` message went to, for a thread of another weave (or one that
   * moved there): it is that weave's to put it in the thread's inbox, or in its own dead letters
   * (the thread ended, or never existed there); this side cannot tell which.
   */
  weave?: string
}

/** The other weave that a delivered message to `to` goes to, if any (see SendOutcome.weave). */
function otherWeave(journal: Journal, r: SendResult): string | undefined {
  if (!r.delivered || r.duplicate === true) return undefined
  const row = journal.thread(r.to)
  if (row !== undefined) return row.status === 'moved' ? movedTo(journal.db, r.to) : undefined
  const home = weaveOfThread(r.to)
  return home !== null && home !== journal.weaveId ? home : undefined
}

/**
 * Sends `message` from outside any thread to a thread id or registered name of journal `db`, the
 * way `raiment send` does: with a weave running on it, a control request that weave answers
 * exactly as `Weave.send` (waiting up to `waitMs`, 5 s, for it to take the request); with none, into the thread's inbox (or outbox, or
 * the dead letters) here. The UI's send is this too. `key`: a keyed send (`Weave.send`'s `opts.key`):
 * sent once per receiver and key; the result of a send again has `duplicate: true`.
 * @throws InvalidArgument for an empty address, a value that cannot be recorded, or a bad key
 * @throws MessageTooLarge for a message bigger than the weave's maxMessageBytes
 * @throws RaimentError (`RAIMENT_SEND_TIMEOUT`, `RAIMENT_SEND_FAILED`)
 */
export async function sendMessage(db: string, to: string, message: unknown, waitMs = SEND_TIMEOUT_MS, key?: string): Promise<SendOutcome> {
  if (to.trim() === '') throw new InvalidArgument(`ID_OR_NAME must be a thread id (see raiment ps) or a registered name, got ${JSON.stringify(to)}`)
  const msgId = key === undefined ? `cli:${randomUUID()}` : keyedId(checkSendKey(key), `cli:${randomUUID()}`)
  const body = encodeValue(message, 'the message')
  const journal = openExisting(db)
  try {
    // The limit of the weave that runs, or last ran, on this journal (src/weave.ts).
    checkMessageSize(`the message to ${to}`, body, Number(journal.meta('max_message_bytes') ?? MAX_MESSAGE_BYTES))
    // The owner check and the write are one step that no weave opening now can split.
    const sent = withOwner(journal, (owner): Sent => {
      if (owner === null) return deliver(journal, to, body, null, msgId)
      const n = Number(journal.db.prepare('INSERT INTO control (kind, thread, arg, msg_id) VALUES (?, ?, ?, ?)').run('send', to, body, msgId).lastInsertRowid)
      return { owner, n }
    })
    if (!('result' in sent)) {
      const result = await awaitReply(journal, sent.n, sent.owner, to, waitMs)
      const weave = otherWeave(journal, result)
      return { result, ...(weave !== undefined ? { weave } : {}) }
    }
    if (!sent.result.delivered || sent.result.duplicate === true) return { result: sent.result }
    const o = sent.outbox
    const weave = o?.weave ?? otherWeave(journal, sent.result)
    const waits =
      o !== undefined
        ? `no weave runs on ${db}; ${sent.result.to} ${o.moved ? 'moved to' : 'is a thread of'} weave '${o.weave}': the message waits in the outbox here until a weave runs on this journal with a broker (raiment start --db ${db} --amqp URL) and sends it on`
        : sent.waitsForName === true
          ? `no weave runs on ${db}; the message waits here behind those already waiting for the name '${to}', until a weave runs on this journal with a broker (raiment start --db ${db} --amqp URL) and sends them on, in order`
          : sent.heldFor !== undefined
            ? `no weave runs on ${db}; ${sent.result.to} has ended and its supervisor ${sent.heldFor} is to restart it: the message waits, held for its successor, until a weave runs on this journal (raiment start --db ${db})`
            : `no weave runs on ${db}; the message waits in the inbox of ${sent.result.to} until one does (raiment start --db ${db})`
    return { result: sent.result, waits, ...(weave !== undefined ? { weave } : {}) }
  } finally {
    journal.close()
  }
}

/** `raiment send [--key KEY] ID_OR_NAME MESSAGE_JSON`. Exit 0 when delivered (or sent before with that key), 1 when dead-lettered. */
export async function send(to: string, text: string, o: DbOptions & AskOptions & { key?: string }): Promise<number> {
  if (to.trim() === '') throw new InvalidArgument(`ID_OR_NAME must be a thread id (see raiment ps) or a registered name, got ${JSON.stringify(to)}`)
  if (o.key !== undefined) checkSendKey(o.key)
  const waitMs = askTimeout(o, SEND_TIMEOUT_MS)
  const { result, waits, weave } = await sendMessage(o.db, to, parseMessage(jsonArgument(text), to), waitMs, o.key)
  // For a thread of another weave, delivered means handed to that weave: said in the output too.
  say(JSON.stringify(weave === undefined ? result : { ...result, sentToWeave: weave }))
  if (result.duplicate === true) {
    note(`already sent to ${result.to} with key '${o.key ?? ''}'${result.delivered ? '' : ' (it went to the dead letters then)'}: not sent again`)
    return 0
  }
  if (!result.delivered) return notDelivered(result)
  if (waits !== undefined) note(waits)
  else if (weave !== undefined) {
    note(`sent to weave '${weave}' (its queue has it, or will once the relay publishes it): that weave puts it in the inbox of ${result.to}, or in its own dead letters if ${result.to} has ended or does not exist there (raiment dead-letters --db on its journal); this command cannot tell which`)
  }
  return 0
}

/** Says a message went to the dead letters; exit status 1. */
export function notDelivered(r: Extract<SendResult, { delivered: false }>): number {
  complain('RAIMENT_NOT_DELIVERED', `not delivered to ${r.to}: ${r.reason}; the message is kept in the dead letters (raiment dead-letters)`)
  return 1
}

/**
 * With no weave running: into the inbox of a pending or running thread (by id, or by a name a
 * thread holds), or of one ended whose messages are held for its successor; for a thread that moved to another weave, or whose id names another weave and
 * that never ran here (the journal's weave has run with a broker), into the outbox for that
 * weave (the relay sends it on when a weave next runs here with a broker), as the weave would
 * send it; else into the dead letters, with the reasons a weave gives.
 */
export function deliver(journal: Journal, to: string, body: string, sender: string | null = null, msgId = `cli:${randomUUID()}`): Delivered {
  const key = keyOf(msgId)
  if (key === null) return deliverOnce(journal, to, body, sender, msgId)
  // A keyed send (src/send-keys.ts), as the weave does it: once per receiver and key.
  const db = journal.db
  const named = db.prepare('SELECT thread FROM names WHERE name = ?').pluck().get(to) as string | undefined
  // As the weave counts it: a name held on another weave, by the thread last known to hold it.
  const receiver = named ?? nameElsewhere(journal, to)?.thread ?? to
  const now = Date.now()
  const first = db.prepare('SELECT result FROM send_keys WHERE receiver = ? AND key = ? AND at >= ?').pluck().get(receiver, key, now - SEND_KEY_RETENTION_MS) as string | null | undefined
  if (first !== undefined) return { result: { ...(first === null ? { delivered: true as const, to: receiver } : (JSON.parse(first) as SendResult)), duplicate: true } }
  const sent = deliverOnce(journal, to, body, sender, msgId)
  db.prepare('INSERT OR REPLACE INTO send_keys (receiver, key, at, result) VALUES (?, ?, ?, ?)').run(receiver, key, now, JSON.stringify(sent.result))
  return sent
}

type Delivered = { result: SendResult; outbox?: { weave: string; moved: boolean }; waitsForName?: true; heldFor?: string }

function deliverOnce(journal: Journal, to: string, body: string, sender: string | null, msgId: string): Delivered {
  const db = journal.db
  const named = db.prepare('SELECT thread FROM names WHERE name = ?').get(to) as { thread: string } | undefined
  const target = named?.thread ?? (to.includes('/') ? to : null)
  const row = target === null ? undefined : journal.thread(target)
  const now = Date.now()
  // Or one ended whose messages and names are held for its successor (src/successions.ts), while
  // its keeper lives: one killed here too (`raiment kill`) lets them go when a weave next runs.
  const heldFor = target !== null && row !== undefined && row.status !== 'pending' && row.status !== 'running' ? keeperHolding(journal, target) : undefined
  if (target !== null && (row?.status === 'pending' || row?.status === 'running' || heldFor !== undefined)) {
    db.prepare('INSERT INTO inbox (thread, sender, msg_id, body, at) VALUES (?, ?, ?, ?, ?)').run(target, sender, msgId, body, now)
    return heldFor === undefined ? { result: { delivered: true, to: target } } : { result: { delivered: true, to: target }, heldFor }
  }
  const moved = row?.status === 'moved' ? movedTo(db, target!) : undefined
  // A thread of another weave (its id says so) that this journal never held, from a journal
  // whose weave has run with a broker: that weave, running here again, sends it there, as this
  // does through the outbox. (One that never did dead-letters it, as it would: "no thread".)
  const home = target !== null && row === undefined ? weaveOfThread(target) : null
  const dest = moved ?? (home !== null && home !== journal.weaveId && journal.meta('amqp') !== undefined ? home : undefined)
  if (target !== null && dest !== undefined) {
    const envelope: Envelope = { k: 'msg', from: sender, to: target, body }
    db.prepare('INSERT INTO outbox (msg_id, dest, body, at) VALUES (?, ?, ?, ?)').run(msgId, dest, JSON.stringify(envelope), now)
    return { result: { delivered: true, to: target }, outbox: { weave: dest, moved: moved !== undefined } }
  }
  // A name no thread here holds, from a journal whose weave has run with a broker: behind the
  // messages already waiting for it here (a weave places them in order, as it does its own); else
  // to the weave last heard announcing it, or where a thread that moved from here took it, by the
  // name, as the weave would send it.
  if (target === null && journal.meta('amqp') !== undefined) {
    if (db.prepare('SELECT 1 FROM outbox_names WHERE name = ? LIMIT 1').get(to) !== undefined) {
      db.prepare('INSERT INTO outbox_names (msg_id, name, sender, body, at) VALUES (?, ?, ?, ?, ?)').run(msgId, to, sender, body, now)
      return { result: { delivered: true, to }, waitsForName: true }
    }
    const elsewhere = nameElsewhere(journal, to)
    if (elsewhere !== undefined) {
      const envelope: Envelope = { k: 'msg', from: sender, to: elsewhere.thread, body, name: to }
      db.prepare('INSERT INTO outbox (msg_id, dest, body, at) VALUES (?, ?, ?, ?)').run(msgId, elsewhere.weave, JSON.stringify(envelope), now)
      return { result: { delivered: true, to: elsewhere.thread }, outbox: { weave: elsewhere.weave, moved: elsewhere.moved } }
    }
  }
  const reason = target === null ? `no thread is registered as '${to}'` : row !== undefined ? `thread ${target} has ended` : `no thread ${target} exists`
  deadLetterInsert(db).run(sender, to, body, reason, now)
  return { result: { delivered: false, to, reason } }
}

/** The keeper (a supervisor), pending or running here, for which ended thread `thread`'s messages and names are held; else undefined. */
function keeperHolding(journal: Journal, thread: string): string | undefined {
  const keeper = journal.db.prepare('SELECT keeper FROM successions WHERE thread = ? AND held = 1').pluck().get(thread) as string | undefined
  const status = keeper === undefined ? undefined : journal.thread(keeper)?.status
  return status === 'pending' || status === 'running' ? keeper : undefined
}

/** Where `name` was last known to be held on another weave: a thread that moved from here with it, or a weave heard announcing it. */
function nameElsewhere(journal: Journal, name: string): { weave: string; thread: string; moved: boolean } | undefined {
  const db = journal.db
  // In the order a weave looks (src/name-sends.ts `#lookup`): the weave heard announcing it, then a thread moved from here.
  const heard = db.prepare('SELECT weave, thread FROM name_owners WHERE name = ?').get(name) as { weave: string; thread: string } | undefined
  if (heard !== undefined && heard.weave !== journal.weaveId) return { ...heard, moved: false }
  const moved = db.prepare('SELECT thread FROM moved_names WHERE name = ?').pluck().get(name) as string | undefined
  const to = moved === undefined ? undefined : movedTo(db, moved)
  return moved !== undefined && to !== undefined ? { weave: to, thread: moved, moved: true } : undefined
}

/**
 * Waits for the weave's answer to control request `n`: the JSON of a SendResult. A request the
 * weave has not taken within `waitMs` is withdrawn (nothing was sent: sending again is
 * safe; a user trial's retry after a timeout that said "stays queued" sent the message twice).
 */
async function awaitReply(journal: Journal, n: number, owner: Owner, to: string, waitMs: number): Promise<SendResult> {
  const reply = await answerOf(journal, n, 'send', true, undefined, waitMs)
  if (reply === null) {
    // A weave that stopped meanwhile (SIGKILL) no longer holds the journal's lock: not busy.
    const now = runningOwner(journal)
    if (now === null || now.pid !== owner.pid || now.since !== owner.since) {
      throw new RaimentError(
        'RAIMENT_SEND_TIMEOUT',
        `the weave (pid ${owner.pid}) stopped before it took the message (${now === null ? 'no weave runs on the journal now' : `a weave in pid ${now.pid} runs on it now`}); it was withdrawn, nothing was sent: send it again`,
      )
    }
    throw new RaimentError(
      'RAIMENT_SEND_TIMEOUT',
      `the weave (pid ${owner.pid}) did not take the message within ${waitText(waitMs)}; it was withdrawn, nothing was sent: send it again once the weave answers. ${busyHint(waitMs)}`,
    )
  }
  let result: SendResult | undefined
  try {
    result = JSON.parse(reply) as SendResult
  } catch {
    // Not a SendResult: the weave's error message.
  }
  if (typeof result?.delivered !== 'boolean') throw new RaimentError('RAIMENT_SEND_FAILED', `the weave (pid ${owner.pid}) could not send to ${to}: ${reply}`)
  return result
}
