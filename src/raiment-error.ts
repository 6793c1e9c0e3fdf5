/**
 * Every error Raiment throws is a `RaimentError` with a stable string `code`, so callers can
 * branch on `err.code` rather than on message text. Messages say what was wrong and what to do.
 */
export class RaimentError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}
