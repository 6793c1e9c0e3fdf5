/**
 * A library for tests: `step(name)` answers its name, `gate()` never answers (it holds a thread
 * running until its weave closes); `seen` lists the calls made, in order.
 */
export function stepLib(): { seen: string[]; lib: { step(name: string): Promise<string>; gate(): Promise<never> } } {
  const seen: string[] = []
  return {
    seen,
    lib: {
      async step(name: string) {
        seen.push(name)
        return name
      },
      gate(): Promise<never> {
        seen.push('gate')
        return new Promise(() => {})
      },
    },
  }
}
