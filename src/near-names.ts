/** Text helpers of the error messages: one line of a compiler's message, the name nearest a slip. */

/**
 * One line of plain text, at most 500 characters: a compiler's message may span lines, with
 * colours and a code frame (the whole of it stays in the error's `cause`).
 */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/\u001b\[[0-9;]*m/g, '').replace(/\s*\n\s*/g, ' ')
  return t.length > 500 ? t.slice(0, 499) + '…' : t
}

/** The known name nearest to `name` when it is near enough to be a slip of the keyboard. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestD = Math.max(1, Math.floor(name.length / 3)) + 1
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase())
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  return best
}

/** Levenshtein distance (insert, delete, substitute: 1 each). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]!
}
