/**
 * The markers that stand for secret values in the journal. Each is a string, so it goes through
 * every encoding (JSON, superjson) as it is:
 *
 * - `[secret:KID:MAC]` an argument: its keyed hash under the key `KID` (calls are matched by it);
 * - `[secret:KID:sealed:DATA]` an outcome: the value encrypted under the key `KID`;
 * - `[secret]` any secret: what a replay without the key asks with, and matches against.
 */

export const anyMarker = '[secret]'

export function macMarker(kid: string, mac: string): string {
  return `[secret:${kid}:${mac}]`
}

export function sealedMarker(kid: string, data: string): string {
  return `[secret:${kid}:sealed:${data}]`
}

/** Every marker with a key in a text (a journal key), and its parts. */
const KEYED = /\[secret:([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)(?::([A-Za-z0-9_-]+))?\]/g
const WHOLE_SEALED = /^\[secret:([A-Za-z0-9_-]+):sealed:([A-Za-z0-9_-]+)\]$/

/** What every marker begins with. */
export const MARK = '[secret'

/** Does a text hold a marker (keyed or not)? */
export function hasMarker(text: string): boolean {
  return text.includes(MARK)
}

/** Is `v` a marker string? */
export function isMarker(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith('[secret') && v.endsWith(']') && (v === anyMarker || /^\[secret:[A-Za-z0-9_:-]+\]$/.test(v))
}

/** The ids of the keys whose markers a text holds (`null` stands for `[secret]`). */
export function markerKids(text: string): Set<string | null> {
  const out = new Set<string | null>()
  for (const m of text.matchAll(KEYED)) out.add(m[1]!)
  if (text.includes(anyMarker)) out.add(null)
  return out
}

/** The text with every keyed marker made `[secret]`: how a replay without the key compares. */
export function anyForm(text: string): string {
  return hasMarker(text) ? text.replace(KEYED, anyMarker) : text
}

/** The key id and data of a sealed marker, or null for any other value. */
export function sealedParts(v: string): { kid: string; data: string } | null {
  const m = WHOLE_SEALED.exec(v)
  return m === null ? null : { kid: m[1]!, data: m[2]! }
}
