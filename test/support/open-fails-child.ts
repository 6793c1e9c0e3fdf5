/**
 * A weave process for test/open-fails-midway.test.ts. `crash DB DUMPS`: opens a weave on DB, ends a
 * thread, says `ready` (the test SIGKILLs it then: its owner record stays, as after a crash).
 * `open DB DUMPS`: opens DB (failing, as the test arranges), says `refused CODE`, lets a few turns
 * of the event loop go by, says `lived` and exits 0; an uncaught error ends it otherwise.
 */
import { writeSync } from 'node:fs'
import { thread, Weave, type AnyThreadType } from 'raiment'

const say = (line: string): void => void writeSync(1, line + '\n')
const threads = { echo: thread({ uses: [], async does(p: unknown) { return p } }) as AnyThreadType }
const [mode, db, dumps] = process.argv.slice(2) as [string, string, string]

if (mode === 'crash') {
  const w = await Weave.open({ db, threads, ioLibs: false, dumps })
  await w.join(w.spawn('echo', 1))
  say('ready')
  await new Promise(() => {})
} else {
  try {
    await Weave.open({ db, threads, ioLibs: false, dumps })
    say('opened')
  } catch (e) {
    say(`refused ${(e as { code?: string }).code}`)
  }
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10))
  say('lived')
  process.exit(0)
}
