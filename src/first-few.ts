/** The first five of `items`, and how many more: `a, b, c, d, e and 3 more` (for messages). */
export function firstFew(items: readonly string[]): string {
  return items.length <= 5 ? items.join(', ') : `${items.slice(0, 5).join(', ')} and ${items.length - 5} more`
}
