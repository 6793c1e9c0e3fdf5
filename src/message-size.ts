/**
 * The size limit of a message (`maxMessageBytes`): what a send measures, and the limit's default.
 *
 * Invariant: a message is measured as it travels between weaves, its encoded body as a JSON
 * string inside its envelope (src/messages.ts), the same for a send inside one weave, so what a
 * program sends here it can send when its threads are spread over weaves.
 */
import { InvalidArgument, MessageTooLarge } from './errors.js'
import { valueText } from './value-text.js'

/** The default limit: RabbitMQ 4's default max_message_size (16 MiB; RabbitMQ 3.x's is 128 MiB). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/** The bytes of `body` (encoded) as its envelope carries it: a JSON string, in UTF-8. */
export function wireBytes(body: string): number {
  // A UTF-16 unit is at most 6 bytes in JSON (`\u001f`): a body that short needs no measuring.
  return Buffer.byteLength(JSON.stringify(body))
}

/**
 * Refuses `body` (encoded) when it is bigger than `limit` as it travels.
 * @throws MessageTooLarge
 */
export function checkMessageSize(what: string, body: string, limit: number): void {
  if (body.length * 6 + 2 <= limit) return
  const bytes = wireBytes(body)
  if (bytes > limit) throw new MessageTooLarge(what, bytes, limit)
}

/**
 * Checks the `maxMessageBytes` option.
 * @throws InvalidArgument
 */
export function checkMaxMessageBytes(v: unknown): void {
  if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 1024)) {
    throw new InvalidArgument(`maxMessageBytes must be a whole number of bytes from 1024 up (default ${MAX_MESSAGE_BYTES}: 16 MiB), got ${valueText(v)}`)
  }
}

/**
 * `--max-message-bytes`: a number of bytes, or with KiB, MiB or GiB (`16MiB`).
 * @throws InvalidArgument
 */
export function parseBytes(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|)\s*$/i.exec(text)
  const unit = { '': 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 }[(m?.[2] ?? '').toLowerCase() as '' | 'kib' | 'mib' | 'gib']
  const n = m === null ? NaN : Math.floor(Number(m[1]) * unit)
  if (!Number.isSafeInteger(n) || n < 1024) throw new InvalidArgument(`${flag} must be a number of bytes from 1024 up, or with KiB, MiB or GiB (16MiB), got ${JSON.stringify(text)}`)
  return n
}
