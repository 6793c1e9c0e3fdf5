/**
 * HTML as tagged templates: `h\`<p>${text}</p>\`` escapes every interpolated value, except the
 * `Html` of another template; arrays are joined; null, undefined and false render as nothing.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text
  }
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[]

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

function part(p: Part): string {
  if (p === null || p === undefined || p === false) return ''
  if (p instanceof Html) return p.text
  if (Array.isArray(p)) return (p as readonly Part[]).map(part).join('')
  return escapeHtml(String(p))
}

export function h(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0]!
  for (let i = 0; i < parts.length; i++) out += part(parts[i]) + strings[i + 1]!
  return new Html(out)
}

/** Text already safe as HTML (made here, never from a journal). */
export function raw(text: string): Html {
  return new Html(text)
}
