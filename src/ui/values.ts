/**
 * How much of a recorded value a page shows. A value (arguments, an outcome, params, a result, an
 * error, a message) is shown up to VALUE_MAX characters, then "… N KB more: the dump has it
 * whole", as `raiment show` cuts its cells: 200 calls returning 500 KB each made a page of 102 MB.
 *
 * Invariant: a page's size and work are bounded whatever its values hold. A value whose recorded
 * text is longer than DECODE_MAX is not even decoded: the page shows the start of that text (a
 * `Cut`).
 */

/** The most characters of one value a page shows. */
export const VALUE_MAX = 4096

/** Recorded texts longer than this are not decoded for a page. */
export const DECODE_MAX = 16 * 1024

/** A value too long to decode for a page: the start of its recorded text, and that text's length. */
export class Cut {
  constructor(
    readonly head: string,
    readonly length: number,
  ) {}
}

/** `text` decoded by `decode`, or a `Cut` of it when it is longer than DECODE_MAX. */
export function decodeBounded(text: string, decode: (text: string) => unknown): unknown {
  return text.length > DECODE_MAX ? new Cut(text.slice(0, VALUE_MAX), text.length) : decode(text)
}

/** `1 KB`, `488 KB`, `12.4 MB`: how much was left out. */
export function sizeText(chars: number): string {
  const kb = chars / 1024
  return kb < 1024 ? `${Math.max(1, Math.ceil(kb))} KB` : `${(kb / 1024).toFixed(1)} MB`
}

/** `text` cut at `max` characters, and how many it left out (0: whole). */
export function clip(text: string, max = VALUE_MAX): { text: string; more: number } {
  return text.length <= max ? { text, more: 0 } : { text: text.slice(0, max) + '…', more: text.length - max }
}
