/**
 * log: leveled log lines on stderr, one line per call:
 *
 *     2026-11-22T03:00:00.000Z info  host-w/1 charged card {"cents":1200}
 *
 * or, when the weave's config has a `logger` (a pino logger, or anything with the same level
 * methods: `raiment start --log-format json` gives its own), through it: the fields, `thread`
 * (the thread id) and `call` (the call id), and the message.
 *
 * A log call is a weft call like any other, so a resumed or replayed thread does not print again
 * what it printed before: replayed calls never reach this library. Lines below the weave's level
 * are dropped (the call is still recorded, so a thread's record does not depend on the level).
 */
import { callContext, InvalidArgument } from 'raiment'
import type { LibraryApi, WeaveConfig } from 'raiment'

export const LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
export type LogLevel = (typeof LEVELS)[number]

/** The level: the weave's `config.logLevel`, else `RAIMENT_LOG_LEVEL`, else `info`. */
function levelOf(config: WeaveConfig): LogLevel {
  const fromConfig = config.logLevel
  const raw = fromConfig ?? process.env.RAIMENT_LOG_LEVEL ?? 'info'
  const where = fromConfig !== undefined ? 'config.logLevel' : 'RAIMENT_LOG_LEVEL'
  const level = typeof raw === 'string' ? raw.trim().toLowerCase() : raw
  if (level === '') return 'info'
  if (!LEVELS.includes(level as LogLevel)) {
    throw new InvalidArgument(`${where} must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(raw)}`)
  }
  return level as LogLevel
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

/** JSON for a log line: BigInt, Map, Set and errors are shown rather than thrown on or lost. */
function fieldsText(fields: Record<string, unknown>): string {
  return JSON.stringify(fields, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Map) return Object.fromEntries(v as Map<unknown, unknown>) as unknown
    if (v instanceof Set) return [...(v as Set<unknown>)]
    if (v instanceof Error) return { name: v.name, message: v.message }
    if (ArrayBuffer.isView(v)) return `<${v.byteLength} bytes>`
    return v
  })
}

function oneLine(s: string): string {
  return s.replace(/\r?\n|\r/g, '\\n')
}

/** What the `logger` of the weave's config must have: pino's level methods. */
export type StructuredLogger = Record<Exclude<LogLevel, 'silent'>, (fields: Record<string, unknown>, message: string) => void>

function loggerOf(config: WeaveConfig): StructuredLogger | null {
  const l = config.logger as Partial<StructuredLogger> | undefined
  if (l === undefined || l === null) return null
  if (LEVELS.slice(0, 4).some((k) => typeof l[k as keyof StructuredLogger] !== 'function')) {
    throw new InvalidArgument('config.logger must be a pino logger (or have its methods debug, info, warn and error)')
  }
  return l as StructuredLogger
}

const make = (config: WeaveConfig) => {
  const min = LEVELS.indexOf(levelOf(config))
  const logger = loggerOf(config)
  const write = (level: Exclude<LogLevel, 'silent'>, message: string, fields: Record<string, unknown> | undefined): void => {
    if (typeof message !== 'string') {
      throw new InvalidArgument(`log.${level}(message, fields?) expects a string message, got ${typeof message}`)
    }
    if (fields !== undefined && !isPlainObject(fields)) {
      throw new InvalidArgument(`log.${level}(message, fields?) expects fields to be a plain object, got ${String(fields)}`)
    }
    const ctx = callContext()
    const threadId = ctx.threadId
    if (LEVELS.indexOf(level) < min) return
    if (logger !== null) {
      // As JSON holds them (BigInt, Map, Set and errors shown, as on a pretty line).
      const shown = fields === undefined ? {} : (JSON.parse(fieldsText(fields)) as Record<string, unknown>)
      logger[level]({ ...shown, thread: threadId, call: ctx.callId }, message)
      return
    }
    const tail = fields === undefined || Object.keys(fields).length === 0 ? '' : ' ' + fieldsText(fields)
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${threadId} ${oneLine(message)}${tail}\n`)
  }
  return {
    /** Detail for debugging; dropped unless the level is `debug`. */
    async debug(message: string, fields?: Record<string, unknown>): Promise<void> {
      write('debug', message, fields)
    },
    /** What the thread is doing. */
    async info(message: string, fields?: Record<string, unknown>): Promise<void> {
      write('info', message, fields)
    },
    /** Something unexpected that the thread copes with. */
    async warn(message: string, fields?: Record<string, unknown>): Promise<void> {
      write('warn', message, fields)
    },
    /** Something that went wrong. */
    async error(message: string, fields?: Record<string, unknown>): Promise<void> {
      write('error', message, fields)
    },
  }
}
export default make

export type LogApi = LibraryApi<ReturnType<typeof make>>
